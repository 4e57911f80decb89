/**
 * Transport for an OpenAI-compatible chat-completions proxy: one `POST {baseUrl}/chat/completions` with the
 * key in the `Authorization` header (never the URL), aborted when the calling fiber is interrupted. No
 * retries: Peel owns retry policy. It knows nothing about images; {@link ExampleChannel} does the wire
 * conversion and `internal/errors.ts` classifies what comes back.
 *
 * @since 0.1.0
 */
import { Errors } from "@peel/contract"
import { Effect, Redacted } from "effect"

/** What the proxy answered, unparsed. @category models */
export interface Reply {
  readonly status: number
  readonly contentType: string
  /** The `Retry-After` header, if any. */
  readonly retryAfter: string | undefined
  readonly text: string
}

/** @category models */
export interface Client {
  readonly baseUrl: string
  /** Send one chat completion request. Fails only when no answer came back at all. */
  readonly chatCompletions: (body: unknown) => Effect.Effect<Reply, Errors.Unavailable>
}

/** @category constructors */
export interface Options {
  /** Everything before `/chat/completions`, e.g. `https://api.example.com/v1`. */
  readonly baseUrl: string
  readonly apiKey: Redacted.Redacted<string>
  /** The channel's name, for errors. */
  readonly channel: string
}

const describeCause = (cause: unknown): string => {
  if (!(cause instanceof Error)) return String(cause)
  const inner = cause.cause instanceof Error ? `: ${cause.cause.message}` : ""
  return `${cause.message}${inner}`
}

/** @category constructors */
export const make = (options: Options): Client => {
  const baseUrl = options.baseUrl.replace(/\/+$/, "")
  const url = `${baseUrl}/chat/completions`
  return {
    baseUrl,
    chatCompletions: (body) =>
      Effect.tryPromise({
        try: async (signal) => {
          const response = await fetch(url, {
            method: "POST",
            headers: {
              authorization: `Bearer ${Redacted.value(options.apiKey)}`,
              "content-type": "application/json",
              accept: "application/json",
            },
            body: JSON.stringify(body),
            signal,
          })
          return {
            status: response.status,
            contentType: response.headers.get("content-type") ?? "",
            retryAfter: response.headers.get("retry-after") ?? undefined,
            text: await response.text(),
          }
        },
        catch: (cause) =>
          new Errors.Unavailable({
            channel: options.channel,
            message: Errors.describeBody(`cannot reach ${url}: ${describeCause(cause)}`, [
              Redacted.value(options.apiKey),
            ]),
          }),
      }),
  }
}
