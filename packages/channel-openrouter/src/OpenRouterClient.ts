/**
 * The transport for OpenRouter: the `openai` SDK pointed at `https://openrouter.ai/api/v1` with SDK
 * retries off and the key as a Bearer token (see `@peel/openai-wire`'s ChatClient).
 *
 * @since 0.1.0
 */
import { ChatClient } from "@peel/openai-wire"
import type { Redacted } from "effect"
import { classify } from "./internal/errors.ts"

export const defaultBaseUrl = "https://openrouter.ai/api/v1"

/** @category constructors */
export const make = (options: {
  readonly channel: string
  readonly apiKey: Redacted.Redacted<string>
  readonly baseUrl?: string
  readonly timeoutMillis?: number
}): ChatClient.ChatClient =>
  ChatClient.make({
    channel: options.channel,
    apiKey: options.apiKey,
    baseUrl: (options.baseUrl ?? defaultBaseUrl).replace(/\/+$/, ""),
    ...(options.timeoutMillis === undefined ? {} : { timeoutMillis: options.timeoutMillis }),
    headers: { "X-Title": "Peel" },
    classify,
  })
