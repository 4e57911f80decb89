/**
 * The OpenAI chat-completions wire for image generation, shared by OpenRouter and OpenAI-compatible
 * proxies: the request body (`modalities`, `image_config` when the channel can honour it), image
 * extraction in the order upstreams are known to use (`message.images`, a markdown data-URI in
 * `content`, a bare data-URI, a URL), usage, and the classification of the `openai` SDK's errors — in
 * one place. URL images are fetched by {@link download}, bounded in size and time and never from a
 * private address unless allowed.
 *
 * @since 0.1.0
 */
import { lookup } from "node:dns/promises"
import { isIP } from "node:net"
import { type Channel, Errors, Image, Network, type Request } from "@peel/contract"
import { Effect, Schema } from "effect"

// ---------------------------------------------------------------------------------------------------
// request

/** How much of the request this upstream can be told. */
export interface RequestShape {
  /** The model id on this upstream. */
  readonly model: string
  /** Send `image_config: { aspect_ratio, image_size }` (OpenRouter: yes; chat proxies: no). */
  readonly imageConfig: boolean
  /** Extra body fields from the request's provider options (already checked by the channel's Schema). */
  readonly extra?: Readonly<Record<string, unknown>> | undefined
}

/** Body keys Peel sets itself: provider options may not override them. */
export const reservedKeys: ReadonlyArray<string> = [
  "model",
  "messages",
  "modalities",
  "image_config",
  "stream",
  "seed",
  "n",
]

/**
 * Provider options for an OpenAI-style channel: extra body fields passed through as they are, except the
 * keys Peel sets itself ({@link reservedKeys}).
 *
 * @category request
 */
export const ExtraBody = Schema.Record(Schema.String, Schema.Unknown).check(
  Schema.makeFilter((body: Readonly<Record<string, unknown>>) => {
    const reserved = Object.keys(body).filter((key) => reservedKeys.includes(key))
    return reserved.length === 0 || `Peel sets ${reserved.join(", ")} itself`
  }),
)

/** The user message: the prompt alone, or the prompt then each reference image as a data-URI `image_url` part. */
export const contentOf = (request: Channel.ChannelRequest): string | ReadonlyArray<Record<string, unknown>> => {
  const images = request.images ?? []
  if (images.length === 0) return request.prompt
  return [
    { type: "text", text: request.prompt },
    ...images.map((image) => ({
      type: "image_url",
      image_url: {
        url: `data:${image.mimeType};base64,${Buffer.from(image.bytes.buffer, image.bytes.byteOffset, image.bytes.byteLength).toString("base64")}`,
      },
    })),
  ]
}

/** OpenRouter's `image_config.image_size`: `0.5K` for Nano Banana 2's 512 size (wire-formats.md §3), else as is. */
export const imageSizeOf = (size: Channel.ChannelRequest["size"]): string => (size === "512" ? "0.5K" : size)

/** The chat-completions body for one request. @category request */
export const buildRequest = (request: Channel.ChannelRequest, shape: RequestShape): Record<string, unknown> => ({
  ...shape.extra,
  model: shape.model,
  messages: [{ role: "user", content: contentOf(request) }],
  modalities: request.imageOnly === true ? ["image"] : ["image", "text"],
  ...(request.seed === undefined ? {} : { seed: request.seed }),
  ...(shape.imageConfig
    ? { image_config: { aspect_ratio: request.aspectRatio, image_size: imageSizeOf(request.size) } }
    : {}),
  stream: false,
})

// ---------------------------------------------------------------------------------------------------
// response

interface Completion {
  readonly choices?: ReadonlyArray<{
    readonly finish_reason?: unknown
    readonly native_finish_reason?: unknown
    readonly message?: {
      readonly content?: unknown
      readonly images?: ReadonlyArray<{ readonly image_url?: { readonly url?: unknown } }>
    }
  }>
  readonly usage?: {
    readonly prompt_tokens?: unknown
    readonly completion_tokens?: unknown
    readonly cost?: unknown
    readonly completion_tokens_details?: { readonly image_tokens?: unknown; readonly reasoning_tokens?: unknown }
  }
  readonly error?: { readonly code?: unknown; readonly message?: unknown }
}

const numberOr = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) ? value : undefined

/** Token usage as the upstream reported it. @category response */
export const usageOf = (value: unknown): Request.Usage | undefined => {
  const usage = (value as Completion | undefined)?.usage
  if (usage === undefined || usage === null) return undefined
  const input = numberOr(usage.prompt_tokens)
  const completion = numberOr(usage.completion_tokens)
  const image = numberOr(usage.completion_tokens_details?.image_tokens)
  const reasoning = numberOr(usage.completion_tokens_details?.reasoning_tokens)
  return {
    ...(input === undefined ? {} : { inputTokens: input }),
    ...(image === undefined ? {} : { outputImageTokens: image }),
    ...(completion === undefined ? {} : { outputTextTokens: Math.max(0, completion - (image ?? 0)) }),
    ...(reasoning === undefined || reasoning === 0 ? {} : { thoughtTokens: reasoning }),
  }
}

/** The upstream's own charge (`usage.cost`, OpenRouter), when it gave one. @category response */
export const costOf = (value: unknown): number | undefined => {
  const cost = numberOr((value as Completion | undefined)?.usage?.cost)
  return cost !== undefined && cost >= 0 ? cost : undefined
}

/**
 * The text the model returned beside the image (`message.content` without any inline image or image
 * link); `undefined` when there is none.
 *
 * @category response
 */
export const textOf = (value: unknown): string | undefined => {
  const content = (value as Completion | undefined)?.choices?.[0]?.message?.content
  const parts =
    typeof content === "string"
      ? [content]
      : Array.isArray(content)
        ? content.map((part: { text?: unknown }) => (typeof part?.text === "string" ? part.text : ""))
        : []
  const text = parts
    .join("\n")
    .replace(/!\[[^\]]*\]\([^)]*\)/g, "")
    .replace(/data:image\/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=_-]+/g, "")
    .trim()
  return text === "" ? undefined : text
}

/** An image found in the answer, or why there is none. @category response */
export type Extracted = Image.Found

const contentText = (content: unknown): string => {
  if (typeof content === "string") return content
  if (Array.isArray(content))
    return content
      .map((part: { text?: unknown; image_url?: { url?: unknown } }) =>
        typeof part?.text === "string"
          ? part.text
          : typeof part?.image_url?.url === "string"
            ? `![image](${part.image_url.url})`
            : "",
      )
      .join("\n")
  return ""
}

/**
 * The error an OpenAI-shaped 200 answer carries in its body (OpenRouter and proxies do this), classified
 * like an HTTP error with `secrets` removed from the quoted message; `undefined` when there is none.
 *
 * @category errors
 */
export const errorInBody = (
  channel: string,
  value: unknown,
  secrets: ReadonlyArray<string> = [],
): Errors.ChannelError | undefined => {
  const error = typeof value === "object" && value !== null ? (value as Completion).error : undefined
  if (error === undefined || error === null) return undefined
  const code = numberOr(error.code)
  return classifyStatus(
    channel,
    code !== undefined && code >= 400 ? code : 502,
    Errors.redact(typeof error.message === "string" ? error.message : "error in a 200 answer", secrets, 300),
    undefined,
  )
}

/**
 * Find the image: `message.images[].image_url.url`, then a markdown data-URI, a bare data-URI or a URL
 * in `message.content`. An `error` object inside a 200 body is classified like an HTTP error
 * ({@link errorInBody}); `secrets` are removed from any upstream text quoted in an error.
 *
 * @category response
 */
export const extractImage = (channel: string, value: unknown, secrets: ReadonlyArray<string> = []): Extracted => {
  if (typeof value !== "object" || value === null) return Image.notAnObject(channel)
  const completion = value as Completion
  const inBody = errorInBody(channel, value, secrets)
  if (inBody !== undefined) return { _tag: "Error", error: inBody }
  const choice = completion.choices?.[0]
  if (choice === undefined)
    return { _tag: "Error", error: new Errors.NoImage({ channel, message: "the answer has no choices" }) }
  for (const image of choice.message?.images ?? []) {
    const url = image?.image_url?.url
    if (typeof url !== "string") continue
    const found = Image.findImageInText(url.startsWith("data:") ? url : `![image](${url})`)
    if (found?._tag === "Data") return Image.foundFromBase64(channel, found.base64)
    if (found?._tag === "Url") return { _tag: "Url", url: found.url }
  }
  const found = Image.findImageInText(contentText(choice.message?.content))
  if (found?._tag === "Data") return Image.foundFromBase64(channel, found.base64)
  if (found?._tag === "Url") return { _tag: "Url", url: found.url }
  const finishReason = typeof choice.finish_reason === "string" ? choice.finish_reason : undefined
  if (finishReason === "content_filter") {
    const reason =
      typeof choice.native_finish_reason === "string"
        ? Errors.redact(choice.native_finish_reason, secrets, 60)
        : "content_filter"
    return {
      _tag: "Error",
      error: new Errors.ContentBlocked({ channel, reason, message: `the image was blocked (${reason})` }),
    }
  }
  if (finishReason === "error")
    return {
      _tag: "Error",
      error: new Errors.Unavailable({ channel, message: "the upstream reported an error while generating" }),
    }
  return {
    _tag: "Error",
    error: new Errors.NoImage({
      channel,
      message: `the answer has no image (finish_reason ${finishReason === undefined ? "missing" : Errors.redact(finishReason, secrets, 60)})`,
      ...(finishReason === undefined ? {} : { finishReason: Errors.redact(finishReason, secrets, 60) }),
    }),
  }
}

// ---------------------------------------------------------------------------------------------------
// URL images

/** Limits for fetching an image by URL. */
export interface DownloadLimits {
  readonly maxBytes: number
  readonly timeoutMillis: number
  /** Allow loopback and private addresses (off by default: an upstream must not make us probe our network). */
  readonly allowPrivate: boolean
}

/**
 * True for loopback, private, link-local, unspecified, multicast and reserved addresses: the one rule of
 * `@peel/contract`'s `Network` (what reference-image downloads in core refuse too).
 *
 * @category download
 */
export const isPrivateAddress = (address: string): boolean => !Network.isPublicAddress(address)

/**
 * Fetch an image URL: https (or http) only, every resolved address public unless allowed, at most
 * `maxBytes`, within `timeoutMillis`, abortable by interruption. The bytes must be an image.
 *
 * @category download
 */
export const download = (channel: string, url: string, limits: DownloadLimits): Effect.Effect<Extracted> =>
  Effect.tryPromise({
    try: async (signal): Promise<Extracted> => {
      const parsed = new URL(url)
      if (parsed.protocol !== "https:" && parsed.protocol !== "http:")
        return {
          _tag: "Error",
          error: new Errors.MalformedResponse({ channel, message: `refusing to fetch a ${parsed.protocol} image URL` }),
        }
      if (!limits.allowPrivate) {
        const host = parsed.hostname.replace(/^\[|\]$/g, "")
        const addresses = isIP(host) !== 0 ? [host] : (await lookup(host, { all: true })).map((entry) => entry.address)
        if (addresses.some(isPrivateAddress))
          return {
            _tag: "Error",
            error: new Errors.MalformedResponse({
              channel,
              message: `refusing to fetch an image from a private address (${parsed.hostname})`,
            }),
          }
      }
      const timeout = AbortSignal.timeout(limits.timeoutMillis)
      const response = await fetch(parsed, { signal: AbortSignal.any([signal, timeout]), redirect: "error" })
      if (!response.ok || response.body === null)
        return {
          _tag: "Error",
          error: new Errors.Unavailable({
            channel,
            status: response.status,
            message: `image download answered ${response.status}`,
          }),
        }
      const declared = Number(response.headers.get("content-length") ?? 0)
      if (declared > limits.maxBytes)
        return {
          _tag: "Error",
          error: new Errors.MalformedResponse({
            channel,
            message: `image is ${declared} bytes, over the ${limits.maxBytes}-byte limit`,
          }),
        }
      const chunks: Array<Uint8Array> = []
      let size = 0
      for await (const chunk of response.body) {
        size += chunk.length
        if (size > limits.maxBytes) {
          return {
            _tag: "Error",
            error: new Errors.MalformedResponse({
              channel,
              message: `image is over the ${limits.maxBytes}-byte limit`,
            }),
          }
        }
        chunks.push(chunk)
      }
      const bytes = new Uint8Array(Buffer.concat(chunks))
      const info = Image.inspectImage(bytes)
      if (info === undefined)
        return {
          _tag: "Error",
          error: new Errors.MalformedResponse({ channel, message: "the downloaded file is not an image" }),
        }
      return { _tag: "Image", bytes, mimeType: info.mimeType }
    },
    catch: (thrown) => thrown,
  }).pipe(
    Effect.catch((thrown) =>
      Effect.succeed<Extracted>({
        _tag: "Error",
        error:
          (thrown as { name?: string })?.name === "TimeoutError"
            ? new Errors.Timeout({ channel, message: `image download took longer than ${limits.timeoutMillis} ms` })
            : new Errors.Unavailable({
                channel,
                message: `image download failed: ${Errors.redact(String((thrown as Error)?.message ?? thrown), [], 200)}`,
              }),
      }),
    ),
  )

// ---------------------------------------------------------------------------------------------------
// errors

const parseRetryAfter = (headers: unknown): number | undefined => {
  const get = (name: string): string | undefined => {
    if (headers === undefined || headers === null) return undefined
    if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined
    const value = (headers as Record<string, unknown>)[name]
    return typeof value === "string" ? value : undefined
  }
  const millis = get("retry-after-ms")
  if (millis !== undefined && Number.isFinite(Number(millis))) return bounded(Number(millis))
  const after = get("retry-after")
  if (after === undefined) return undefined
  if (/^\d+(\.\d+)?$/.test(after.trim())) return bounded(Number(after) * 1000)
  const date = Date.parse(after)
  return Number.isNaN(date) ? undefined : bounded(date - Date.now())
}

/** Ignore absurd waits: negative, zero, or over an hour. */
const bounded = (millis: number): number | undefined => (millis > 0 && millis <= 3_600_000 ? millis : undefined)

const classifyStatus = (
  channel: string,
  status: number,
  message: string,
  retryAfterMs: number | undefined,
): Errors.ChannelError => {
  const fields = { channel, status, message: `${status}: ${message}` }
  if (status === 429)
    return new Errors.RateLimited({ ...fields, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) })
  if (status === 402) return new Errors.InsufficientCredits(fields)
  if (status === 403 && /moderat|flagged|guardrail|safety/i.test(message))
    return new Errors.ContentBlocked({ ...fields, reason: "moderation" })
  if (status === 401 || status === 403) return new Errors.Unauthorized(fields)
  if (status === 408) return new Errors.Timeout(fields)
  if (status >= 500)
    return new Errors.Unavailable({ ...fields, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) })
  return new Errors.Rejected(fields)
}

/**
 * Classify whatever the `openai` SDK threw: `APIError` by status (402 arrives as a plain `APIError`),
 * `APIConnectionTimeoutError` → Timeout, `APIConnectionError` → Unavailable, a JSON parse failure →
 * MalformedResponse. Matched by `name`/`status`, never `instanceof`. Secrets are removed from messages.
 *
 * @category errors
 */
export const classifyThrown = (
  channel: string,
  thrown: unknown,
  secrets: ReadonlyArray<string> = [],
): Errors.ChannelError => {
  const error = thrown as {
    name?: unknown
    status?: unknown
    message?: unknown
    headers?: unknown
    error?: { message?: unknown }
  }
  const raw =
    typeof error?.error?.message === "string"
      ? error.error.message
      : typeof error?.message === "string"
        ? error.message
        : String(thrown)
  const message = Errors.redact(raw, secrets, 300)
  // The SDK's classes keep the generic `name` "Error"; their constructor names tell them apart.
  const className = (thrown as { constructor?: { name?: unknown } })?.constructor?.name
  const name =
    typeof className === "string" && className !== "Error"
      ? className
      : typeof error?.name === "string"
        ? error.name
        : ""
  if (typeof error?.status === "number" && error.status >= 400) {
    const html = /<html|<!doctype/i.test(raw)
    return classifyStatus(
      channel,
      html && error.status < 500 ? 502 : error.status,
      html ? "an HTML error page" : message,
      parseRetryAfter(error.headers),
    )
  }
  if (name === "APIConnectionTimeoutError" || name === "TimeoutError")
    return new Errors.Timeout({ channel, message: "the request timed out" })
  if (name === "APIConnectionError")
    return new Errors.Unavailable({ channel, message: `cannot reach the upstream: ${message}` })
  if (name === "SyntaxError" || /JSON/.test(raw))
    return new Errors.MalformedResponse({ channel, message: `the answer is not valid JSON: ${message}` })
  return new Errors.MalformedResponse({ channel, message })
}
