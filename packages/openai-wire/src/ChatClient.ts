/**
 * The transport every OpenAI-compatible channel shares: an `openai` SDK client with SDK retries off
 * (`maxRetries: 0`: Peel owns retry policy), the key only as a Bearer header, and each call abortable
 * through the request's `signal`, so interrupting the Effect aborts the HTTP request. Failures are
 * classified once, here, into Peel's error taxonomy.
 *
 * @since 0.1.0
 */
import { type Channel, Errors } from "@peel/contract"
import { Effect, Redacted } from "effect"
import OpenAI from "openai"
import {
  classifyThrown,
  costOf,
  type DownloadLimits,
  download,
  errorInBody,
  extractImage,
  textOf,
  usageOf,
} from "./OpenAiWire.ts"

/** @category models */
export interface ChatClientOptions {
  readonly channel: string
  readonly apiKey: Redacted.Redacted<string>
  readonly baseUrl: string
  readonly timeoutMillis?: number
  readonly headers?: Readonly<Record<string, string>>
  /** The channel's own classifier (its `internal/errors.ts`); the shared one by default. */
  readonly classify?: (channel: string, thrown: unknown, secret: string) => Errors.ChannelError
}

/** @category models */
export interface ChatClient {
  /** One chat-completions call with a body the SDK passes through unchanged (extra keys included). */
  readonly complete: (body: Record<string, unknown>) => Effect.Effect<unknown, Errors.ChannelError>
}

/** @category constructors */
export const make = (options: ChatClientOptions): ChatClient => {
  const key = Redacted.value(options.apiKey)
  const sdk = new OpenAI({
    apiKey: key,
    baseURL: options.baseUrl,
    maxRetries: 0,
    timeout: options.timeoutMillis ?? 600_000,
    ...(options.headers === undefined ? {} : { defaultHeaders: { ...options.headers } }),
  })
  return {
    complete: (body) =>
      Effect.tryPromise({
        try: (signal) => sdk.chat.completions.create(body as never, { signal }) as Promise<unknown>,
        catch: (thrown) =>
          options.classify === undefined
            ? classifyThrown(options.channel, thrown, [key])
            : options.classify(options.channel, thrown, key),
      }).pipe(
        // An error inside a 200 answer (OpenRouter, proxies) fails here, where the key is known to redact it.
        Effect.flatMap((response) => {
          const failure = errorInBody(options.channel, response, [key])
          return failure === undefined ? Effect.succeed(response) : Effect.fail(failure)
        }),
      ),
  }
}

/** How a channel turns one chat completion into an image. */
export interface GenerateOptions {
  readonly channel: string
  readonly client: ChatClient
  readonly body: Record<string, unknown>
  readonly download: DownloadLimits
}

/**
 * One attempt: call, find the image (fetching a URL image within limits), and report usage and the
 * upstream's own cost when it gave one. Every failure is already a typed channel error.
 *
 * @category generate
 */
export const generateImage = (options: GenerateOptions) =>
  Effect.gen(function* () {
    const response = yield* options.client.complete(options.body)
    let extracted = extractImage(options.channel, response)
    if (extracted._tag === "Url") extracted = yield* download(options.channel, extracted.url, options.download)
    const usage = usageOf(response)
    const costUsd = costOf(response)
    // An answer the upstream says it charged for is a cost even when it holds no usable image.
    const billed = costUsd !== undefined && costUsd > 0 ? { costUsd } : {}
    if (extracted._tag === "Error") return yield* Effect.fail(Errors.withBilling(extracted.error, billed))
    if (extracted._tag === "Url")
      return yield* Errors.withBilling(
        new Errors.MalformedResponse({ channel: options.channel, message: "the image link led to another link" }),
        billed,
      )
    const text = textOf(response)
    return {
      bytes: extracted.bytes,
      mimeType: extracted.mimeType,
      ...(text === undefined ? {} : { text }),
      ...(usage === undefined ? {} : { usage }),
      ...(costUsd === undefined ? {} : { costUsd }),
    } satisfies Channel.ChannelImage
  })
