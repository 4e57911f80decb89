/**
 * The transport for an OpenAI-compatible proxy: the `openai` SDK with SDK retries off and the key as a
 * Bearer token (see `@peel/openai-wire`'s ChatClient), classified by this channel's own classifier.
 *
 * @since 0.1.0
 */
import { ChatClient } from "@peel/openai-wire"
import type { Redacted } from "effect"
import { classify } from "./internal/errors.ts"

/** @category constructors */
export const make = (options: {
  readonly channel: string
  readonly apiKey: Redacted.Redacted<string>
  readonly baseUrl: string
  readonly timeoutMillis?: number
}): ChatClient.ChatClient =>
  ChatClient.make({
    channel: options.channel,
    apiKey: options.apiKey,
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    ...(options.timeoutMillis === undefined ? {} : { timeoutMillis: options.timeoutMillis }),
    classify,
  })
