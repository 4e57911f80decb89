/**
 * The one place this channel classifies failures: OpenRouter speaks the OpenAI error shape (402 for
 * insufficient credits, 429 with Retry-After, 502/503 when providers are down, errors inside a 200 body),
 * all handled by the shared classifier.
 */
import type { Errors } from "@peel/contract"
import { OpenAiWire } from "@peel/openai-wire"

export const classify = (channel: string, thrown: unknown, secret: string): Errors.ChannelError =>
  OpenAiWire.classifyThrown(channel, thrown, [secret])
