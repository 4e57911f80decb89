/**
 * The transport for Google AI Studio (the Gemini API): a `@google/genai` client with SDK retries off
 * (no `retryOptions`: Peel owns retry policy), the key only in the `x-goog-api-key` header — or, for an
 * OpenAI-compatible proxy that exposes the Gemini-native route (laozhang), only as `Authorization:
 * Bearer` — and every call abortable, so interrupting the Effect aborts the HTTP request.
 *
 * @since 0.1.0
 */
import { GoogleGenAI } from "@google/genai"
import { GeminiWire, Transport } from "@peel/gemini-wire"
import { Redacted } from "effect"
import { classify } from "./internal/errors.ts"

/** @category models */
export interface ClientOptions {
  readonly channel: string
  readonly apiKey: Redacted.Redacted<string>
  readonly baseUrl: string
  readonly apiVersion?: string
  readonly auth: "header" | "bearer"
  readonly timeoutMillis?: number
}

/** @category models */
export type Client = GeminiWire.Client

/** Move the key from `x-goog-api-key` to a Bearer token (proxies' Gemini-native routes). */
const bearer = (key: string) => (headers: Record<string, string>) => {
  delete headers["x-goog-api-key"]
  headers.authorization = `Bearer ${key}`
}

/**
 * Build the client: the SDK over Peel's transport (keep-alive `node:http`, image base64 lifted before
 * parsing).
 *
 * @category constructors
 */
export const make = (options: ClientOptions): Client => {
  const key = Redacted.value(options.apiKey)
  const transport = Transport.make(options.auth === "bearer" ? { headers: bearer(key) } : {})
  const sdk = new GoogleGenAI({
    apiKey: key,
    httpOptions: {
      baseUrl: options.baseUrl,
      ...(options.apiVersion === undefined ? {} : { apiVersion: options.apiVersion }),
      ...(options.timeoutMillis === undefined ? {} : { timeout: options.timeoutMillis }),
      fetch: transport.fetch,
    },
  })
  return GeminiWire.makeClient(sdk, (thrown) => classify(options.channel, thrown, key), transport)
}
