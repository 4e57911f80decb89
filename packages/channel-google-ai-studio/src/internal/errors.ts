/**
 * The one place this channel classifies failures: everything is Google's wire, so it delegates to the
 * shared Gemini classifier with this channel's name and secret.
 */
import type { Errors } from "@peel/contract"
import { GeminiWire } from "@peel/gemini-wire"

export const classify = (channel: string, thrown: unknown, secret: string): Errors.ChannelError =>
  GeminiWire.classifyThrown(channel, thrown, [secret])
