/**
 * The one place this channel classifies failures. Proxies answer in the OpenAI error shape (sometimes
 * with an HTML page or an error inside a 200 body); the shared classifier handles all of it.
 */
import type { Errors } from "@peel/contract"
import { OpenAiWire } from "@peel/openai-wire"

export const classify = (channel: string, thrown: unknown, secret: string): Errors.ChannelError =>
  OpenAiWire.classifyThrown(channel, thrown, [secret])
