/**
 * The Gemini `generateContent` wire, shared by every channel that speaks it (AI Studio, Vertex AI, and
 * the Batch API): the request builder, final-image extraction (skipping `thought: true` parts, accepting
 * `inlineData` / `inline_data` and a markdown data-URI inside a text part), finish-reason and
 * `promptFeedback` mapping, usage mapping, and the classification of Google's errors — in one place.
 *
 * @since 0.1.0
 */
import { Catalog, Channel, Errors, Image, type Request } from "@peel/contract"
import { Effect, Result, Schema } from "effect"
import * as Transport from "./Transport.ts"

// ---------------------------------------------------------------------------------------------------
// request

/** One part of a request's content: the prompt text or a reference image. */
export type RequestPart =
  | { readonly text: string }
  | { readonly inlineData: { readonly mimeType: string; readonly data: string } }

/** A safety setting (wire-formats.md §1 `safetySettings`). */
export interface SafetySetting {
  readonly category: string
  readonly threshold: string
}

/** The SDK parameters of one `generateContent` call for a request. */
export interface GenerateParameters {
  readonly model: string
  readonly contents: ReadonlyArray<{ readonly role: "user"; readonly parts: ReadonlyArray<RequestPart> }>
  readonly config: {
    readonly responseModalities: ReadonlyArray<"TEXT" | "IMAGE">
    readonly imageConfig: { readonly aspectRatio: string; readonly imageSize?: string }
    readonly seed?: number
    readonly safetySettings?: ReadonlyArray<SafetySetting>
    readonly temperature?: number
    readonly topP?: number
    readonly systemInstruction?: string
  }
}

/** Base64 of bytes, read in place (no copy of the image first). */
const base64Of = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

/** Harm categories Gemini takes safety settings for. */
export const harmCategories = [
  "HARM_CATEGORY_HARASSMENT",
  "HARM_CATEGORY_HATE_SPEECH",
  "HARM_CATEGORY_SEXUALLY_EXPLICIT",
  "HARM_CATEGORY_DANGEROUS_CONTENT",
  "HARM_CATEGORY_CIVIC_INTEGRITY",
] as const

/** Block thresholds, strictest first. */
export const harmThresholds = [
  "BLOCK_LOW_AND_ABOVE",
  "BLOCK_MEDIUM_AND_ABOVE",
  "BLOCK_ONLY_HIGH",
  "BLOCK_NONE",
  "OFF",
] as const

/**
 * The `providerOptions` a Gemini channel takes (checked before any call): safety settings, sampling,
 * and a system instruction.
 *
 * @category request
 */
export const ProviderOptions = Schema.Struct({
  safetySettings: Schema.optional(
    Schema.Array(
      Schema.Struct({ category: Schema.Literals(harmCategories), threshold: Schema.Literals(harmThresholds) }),
    ),
  ),
  temperature: Schema.optional(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 2 }))),
  topP: Schema.optional(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  systemInstruction: Schema.optional(Schema.String),
})
/** @category request */
export type ProviderOptions = typeof ProviderOptions.Type

/**
 * The provider options a request gives this channel (under its name or plugin name), decoded; `{}` when
 * none. Core has already checked them with {@link ProviderOptions}.
 *
 * @category request
 */
export const optionsOf = (
  request: Channel.ChannelRequest,
  channel: { readonly name: string; readonly plugin: string },
): ProviderOptions => {
  const raw = Channel.optionsFor(request, channel)
  if (raw === undefined) return {}
  const decoded = Schema.decodeUnknownResult(ProviderOptions)(raw)
  return Result.isSuccess(decoded) ? decoded.success : {}
}

/**
 * Build the SDK parameters: the prompt then each reference image as an `inlineData` part, both
 * modalities (or `IMAGE` alone when the request asks for image-only output), the aspect ratio,
 * `imageSize` (uppercase K) only for models that accept it (Gemini 3 image models;
 * `gemini-2.5-flash-image` must not be sent one), the seed, and the channel's provider options.
 *
 * @category request
 */
export const buildRequest = (
  request: Channel.ChannelRequest,
  model: string = request.model,
  options: ProviderOptions = {},
): GenerateParameters => {
  const acceptsImageSize = Catalog.findModel(request.model)?.acceptsImageSize ?? true
  const images = (request.images ?? []).map(
    (image): RequestPart => ({
      inlineData: { mimeType: image.mimeType, data: base64Of(image.bytes) },
    }),
  )
  return {
    model,
    contents: [{ role: "user", parts: [{ text: request.prompt }, ...images] }],
    config: {
      responseModalities: request.imageOnly === true ? ["IMAGE"] : ["TEXT", "IMAGE"],
      imageConfig: { aspectRatio: request.aspectRatio, ...(acceptsImageSize ? { imageSize: request.size } : {}) },
      ...(request.seed === undefined ? {} : { seed: request.seed }),
      ...(options.safetySettings === undefined ? {} : { safetySettings: options.safetySettings }),
      ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
      ...(options.topP === undefined ? {} : { topP: options.topP }),
      ...(options.systemInstruction === undefined ? {} : { systemInstruction: options.systemInstruction }),
    },
  }
}

// ---------------------------------------------------------------------------------------------------
// response

interface Part {
  readonly text?: unknown
  readonly thought?: unknown
  readonly inlineData?: { readonly mimeType?: unknown; readonly data?: unknown }
  readonly inline_data?: { readonly mime_type?: unknown; readonly mimeType?: unknown; readonly data?: unknown }
}

interface Response {
  readonly candidates?: ReadonlyArray<{
    readonly content?: { readonly parts?: ReadonlyArray<Part> }
    readonly finishReason?: unknown
    readonly finishMessage?: unknown
  }>
  readonly promptFeedback?: { readonly blockReason?: unknown; readonly blockReasonMessage?: unknown }
  readonly usageMetadata?: {
    readonly promptTokenCount?: unknown
    readonly candidatesTokenCount?: unknown
    readonly thoughtsTokenCount?: unknown
    readonly candidatesTokensDetails?: ReadonlyArray<{ readonly modality?: unknown; readonly tokenCount?: unknown }>
  }
  readonly modelVersion?: unknown
  readonly error?: { readonly code?: unknown; readonly message?: unknown; readonly status?: unknown }
}

/** Finish reasons that mean the content was blocked. */
const blockedReasons: ReadonlySet<string> = new Set([
  "SAFETY",
  "IMAGE_SAFETY",
  "PROHIBITED_CONTENT",
  "IMAGE_PROHIBITED_CONTENT",
  "BLOCKLIST",
  "SPII",
  "RECITATION",
  "IMAGE_RECITATION",
  "LANGUAGE",
])

const numberOr = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) ? value : undefined

/**
 * Token usage from `usageMetadata`: the IMAGE entry of `candidatesTokensDetails` is image output; the
 * rest of `candidatesTokenCount` is text; `thoughtsTokenCount` is thoughts. Tolerates missing details.
 *
 * @category response
 */
export const usageOf = (response: Response): Request.Usage | undefined => {
  const metadata = response.usageMetadata
  if (metadata === undefined || metadata === null) return undefined
  const candidates = numberOr(metadata.candidatesTokenCount)
  const image = (metadata.candidatesTokensDetails ?? []).find((detail) => detail?.modality === "IMAGE")
  const imageTokens = numberOr(image?.tokenCount) ?? (image === undefined ? candidates : undefined)
  const input = numberOr(metadata.promptTokenCount)
  const thoughts = numberOr(metadata.thoughtsTokenCount)
  const text = candidates !== undefined && imageTokens !== undefined ? Math.max(0, candidates - imageTokens) : undefined
  return {
    ...(input === undefined ? {} : { inputTokens: input }),
    ...(imageTokens === undefined ? {} : { outputImageTokens: imageTokens }),
    ...(text === undefined ? {} : { outputTextTokens: text }),
    ...(thoughts === undefined ? {} : { thoughtTokens: thoughts }),
  }
}

/** The image or the typed reason there is none. */
export type Extracted = Image.Found

/**
 * The error a 200 answer carries in its body (`{ error: { code, message, status } }`), classified like an
 * HTTP error with `secrets` removed from every quoted text; `undefined` when the body carries none.
 *
 * @category errors
 */
export const errorInBody = (
  channel: string,
  value: unknown,
  secrets: ReadonlyArray<string> = [],
): Errors.ChannelError | undefined => {
  const error = typeof value === "object" && value !== null ? (value as Response).error : undefined
  if (error === undefined || error === null) return undefined
  return classifyStatus(
    channel,
    numberOr(error.code) ?? 500,
    Errors.redact(String(error.status ?? ""), secrets, 60),
    describeMessage(error.message, secrets),
    {},
  )
}

/**
 * Take the final image from a GenerateContentResponse (as JSON or the SDK's object). Thought parts are
 * skipped; the last non-thought `inlineData` wins; failing that, a data-URI (or a URL) inside a text part.
 * `secrets` are removed from any upstream text quoted in an error.
 *
 * @category response
 */
export const extractImage = (channel: string, value: unknown, secrets: ReadonlyArray<string> = []): Extracted => {
  if (typeof value !== "object" || value === null) return Image.notAnObject(channel)
  const response = value as Response
  const inBody = errorInBody(channel, value, secrets)
  if (inBody !== undefined) return { _tag: "Error", error: inBody }
  const blockReason = response.promptFeedback?.blockReason
  const candidate = response.candidates?.[0]
  if (candidate === undefined) {
    if (typeof blockReason === "string" && blockReason !== "")
      return {
        _tag: "Error",
        error: new Errors.ContentBlocked({
          channel,
          reason: Errors.redact(blockReason, secrets, 60),
          message: `the prompt was blocked (${Errors.redact(blockReason, secrets, 60)})`,
        }),
      }
    return { _tag: "Error", error: new Errors.NoImage({ channel, message: "the answer has no candidates" }) }
  }
  const parts = (candidate.content?.parts ?? []).filter((part) => part !== null && part?.thought !== true)
  const finishReason = typeof candidate.finishReason === "string" ? candidate.finishReason : undefined
  for (let index = parts.length - 1; index >= 0; index--) {
    const part = parts[index]!
    const inline = part.inlineData ?? part.inline_data
    if (inline === undefined || inline === null) continue
    if (typeof inline.data !== "string" && !isBase64Bytes(inline.data))
      return { _tag: "Error", error: new Errors.MalformedResponse({ channel, message: "an image part has no data" }) }
    return Image.foundFromBase64(channel, inline.data)
  }
  for (const part of [...parts].reverse()) {
    if (typeof part.text !== "string") continue
    const found = Image.findImageInText(part.text)
    if (found?._tag === "Data") return Image.foundFromBase64(channel, found.base64)
    if (found?._tag === "Url") return { _tag: "Url", url: found.url }
  }
  if (finishReason !== undefined && blockedReasons.has(finishReason))
    return {
      _tag: "Error",
      error: new Errors.ContentBlocked({
        channel,
        reason: finishReason,
        message: `the image was blocked (${finishReason})${typeof candidate.finishMessage === "string" ? `: ${describeMessage(candidate.finishMessage, secrets)}` : ""}`,
      }),
    }
  if (finishReason === "MALFORMED_RESPONSE")
    return {
      _tag: "Error",
      error: new Errors.MalformedResponse({ channel, message: "the model reported MALFORMED_RESPONSE" }),
    }
  return {
    _tag: "Error",
    error: new Errors.NoImage({
      channel,
      message: `the answer has no image (finishReason ${finishReason === undefined ? "missing" : Errors.redact(finishReason, secrets, 60)})`,
      ...(finishReason === undefined ? {} : { finishReason: Errors.redact(finishReason, secrets, 60) }),
    }),
  }
}

/**
 * The text the model returned beside the image: its non-thought text parts, with any inline image
 * (a data-URI) removed; `undefined` when there is none.
 *
 * @category response
 */
export const textOf = (value: unknown): string | undefined => {
  const parts = (value as Response | undefined)?.candidates?.[0]?.content?.parts ?? []
  const text = parts
    .filter((part) => part !== null && part?.thought !== true && typeof part?.text === "string")
    .map((part) =>
      (part.text as string)
        .replace(/!\[[^\]]*\]\(\s*data:[^)]*\)/g, "")
        .replace(/data:image\/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=_-]+/g, "")
        .trim(),
    )
    .filter((part) => part !== "")
    .join("\n")
  return text === "" ? undefined : text
}

/** The model the answer says it used. @category response */
export const modelVersionOf = (value: unknown): string | undefined => {
  const version = (value as Response | undefined)?.modelVersion
  return typeof version === "string" ? version : undefined
}

// ---------------------------------------------------------------------------------------------------
// errors

const describeMessage = (message: unknown, secrets: ReadonlyArray<string>): string =>
  Errors.redact(typeof message === "string" ? message : "", secrets, 200)

/** Parse Google's `retryDelay` ("34s", "1.5s"); absurd values (over an hour) are ignored. */
export const parseRetryDelay = (text: unknown): number | undefined => {
  if (typeof text !== "string") return undefined
  const match = /^(\d+(?:\.\d+)?)s$/.exec(text.trim())
  if (match === null) return undefined
  const millis = Number(match[1]) * 1000
  return millis > 0 && millis <= 3_600_000 ? millis : undefined
}

interface GoogleErrorBody {
  readonly error?: {
    readonly code?: unknown
    readonly message?: unknown
    readonly status?: unknown
    readonly details?: ReadonlyArray<{
      readonly "@type"?: unknown
      readonly retryDelay?: unknown
      readonly reason?: unknown
      readonly violations?: ReadonlyArray<{ readonly quotaId?: unknown; readonly quotaMetric?: unknown }>
    }>
  }
}

const classifyStatus = (
  channel: string,
  status: number,
  googleStatus: string,
  message: string,
  extra: { readonly retryAfterMs?: number; readonly daily?: boolean; readonly apiKeyInvalid?: boolean },
): Errors.ChannelError => {
  const fields = { channel, status, message: `${status}${googleStatus === "" ? "" : ` ${googleStatus}`}: ${message}` }
  if (status === 429 || googleStatus === "RESOURCE_EXHAUSTED")
    return new Errors.RateLimited({
      ...fields,
      ...(extra.retryAfterMs === undefined ? {} : { retryAfterMs: extra.retryAfterMs }),
      ...(extra.daily === true ? { daily: true } : {}),
    })
  if (status === 401 || status === 403 || extra.apiKeyInvalid === true) return new Errors.Unauthorized(fields)
  if (status === 400 && (googleStatus === "FAILED_PRECONDITION" || /billing/i.test(message)))
    return new Errors.Unauthorized(fields)
  if (status === 402) return new Errors.InsufficientCredits(fields)
  if (status === 408) return new Errors.Timeout(fields)
  if (status >= 500) return new Errors.Unavailable(fields)
  return new Errors.Rejected(fields)
}

/**
 * Classify an HTTP error from a Google endpoint: status plus body (the SDK's `ApiError.message` is the
 * body as JSON text; a non-JSON body is wrapped by the SDK). Reads `RetryInfo.retryDelay`, tells a
 * per-day quota from a per-minute one, and spots `API_KEY_INVALID`. `secrets` are removed from messages.
 *
 * @category errors
 */
export const classifyHttpError = (
  channel: string,
  status: number,
  bodyText: string,
  secrets: ReadonlyArray<string> = [],
): Errors.ChannelError => {
  let body: GoogleErrorBody | undefined
  try {
    body = JSON.parse(bodyText) as GoogleErrorBody
  } catch {
    body = undefined
  }
  const error = body?.error
  const details = Array.isArray(error?.details) ? error.details : []
  const retryInfo = details.find((detail) => String(detail?.["@type"] ?? "").endsWith("google.rpc.RetryInfo"))
  const violations = details.flatMap((detail) => (Array.isArray(detail?.violations) ? detail.violations : []))
  const daily = violations.some((violation) =>
    /PerDay|per_day/i.test(`${String(violation?.quotaId ?? "")} ${String(violation?.quotaMetric ?? "")}`),
  )
  const apiKeyInvalid = details.some((detail) => detail?.reason === "API_KEY_INVALID")
  const retryAfterMs = parseRetryDelay(retryInfo?.retryDelay)
  const rawMessage = typeof error?.message === "string" ? error.message : bodyText
  const message = Errors.redact(rawMessage, secrets, 300)
  const htmlPage = error === undefined && /<html|<!doctype/i.test(bodyText)
  const code = htmlPage && status < 500 ? 502 : status
  return classifyStatus(
    channel,
    code,
    typeof error?.status === "string" ? Errors.redact(error.status, secrets, 60) : "",
    message || "(empty body)",
    {
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      daily,
      apiKeyInvalid,
    },
  )
}

/**
 * Classify whatever an SDK call threw: Google's `ApiError` (by `status` and its JSON message), an abort
 * caused by a timeout, or a network failure (connection refused/reset → `Unavailable`).
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
    cause?: { code?: unknown; message?: unknown }
  }
  const message = typeof error?.message === "string" ? error.message : String(thrown)
  if (typeof error?.status === "number" && error.status >= 400)
    return classifyHttpError(channel, error.status, message, secrets)
  if (error?.name === "AbortError" || error?.name === "TimeoutError")
    return new Errors.Timeout({ channel, message: "the request was aborted before an answer arrived (timeout)" })
  const code = typeof error?.cause?.code === "string" ? error.cause.code : ""
  if (
    /ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EPIPE|UND_ERR/.test(code) ||
    /fetch failed|network|socket/i.test(message)
  )
    return new Errors.Unavailable({ channel, message: `cannot reach the upstream${code === "" ? "" : ` (${code})`}` })
  if (error instanceof SyntaxError || /JSON/.test(message))
    return new Errors.MalformedResponse({
      channel,
      message: `the answer is not valid JSON: ${Errors.redact(message, secrets, 200)}`,
    })
  return new Errors.MalformedResponse({ channel, message: Errors.redact(message, secrets, 300) })
}

// ---------------------------------------------------------------------------------------------------
// the whole answer

/**
 * Turn a GenerateContentResponse into the channel's image: the final image's bytes (checked by core), the
 * usage the answer reports and, for a flat-priced channel, its price. Core prices the call from these. An
 * answer without a usable image still carries its usage, so a billed failure is accounted for.
 *
 * @category response
 */
export const toChannelImage = (
  channel: string,
  _request: Channel.ChannelRequest,
  response: unknown,
  flatPrice: number | undefined,
): Effect.Effect<Channel.ChannelImage, Errors.ChannelError> => {
  const usage = typeof response === "object" && response !== null ? usageOf(response as Response) : undefined
  const billing = {
    ...(usage === undefined ? {} : { usage }),
    ...(flatPrice === undefined || usage === undefined ? {} : { costUsd: flatPrice }),
  }
  const extracted = extractImage(channel, response)
  if (extracted._tag === "Error") return Effect.fail(Errors.withBilling(extracted.error, billing))
  if (extracted._tag === "Url")
    return Effect.fail(
      Errors.withBilling(
        new Errors.MalformedResponse({ channel, message: "the answer links to an image instead of including it" }),
        billing,
      ),
    )
  const modelVersion = modelVersionOf(response)
  const text = textOf(response)
  return Effect.succeed({
    bytes: extracted.bytes,
    mimeType: extracted.mimeType,
    ...(usage === undefined ? {} : { usage }),
    ...(flatPrice === undefined ? {} : { costUsd: flatPrice }),
    ...(modelVersion === undefined ? {} : { modelVersion }),
    ...(text === undefined ? {} : { text }),
  })
}

// ---------------------------------------------------------------------------------------------------
// the call

/** What channels need from a `@google/genai` client (structural, so this module needs no SDK import). */
export interface GenerateContentSdk {
  readonly models: { readonly generateContent: (parameters: never) => Promise<unknown> }
}

/** One abortable `generateContent` call, failures classified by the channel's own classifier. @category call */
export interface Client {
  readonly generateContent: (parameters: GenerateParameters) => Effect.Effect<unknown, Errors.ChannelError>
}

/**
 * Wrap an SDK client: the Effect's interruption signal becomes `config.abortSignal` (so interrupting
 * aborts the HTTP request), and whatever the SDK throws goes through `classify` once. An answer that
 * carries `{ error }` in a 200 body goes through `classify` too, as the HTTP error it stands for, so the
 * channel's own classifier (which holds its secrets) quotes it.
 *
 * With a `transport` (the one the SDK was built with, see `Transport`), each call gets its own lifting
 * `fetch` (`config.httpOptions.fetch`): the image's base64 skips the SDK's JSON parsing, and is put back
 * into the answer's `inlineData.data` as ASCII bytes, which {@link extractImage} decodes like a string.
 *
 * @category call
 */
export const makeClient = (
  sdk: GenerateContentSdk,
  classify: (thrown: unknown) => Errors.ChannelError,
  transport?: Transport.Transport,
): Client => ({
  generateContent: (parameters) => {
    const lifted = transport === undefined ? undefined : new Transport.Lifted()
    return Effect.tryPromise({
      try: (signal) =>
        sdk.models.generateContent({
          ...parameters,
          config: {
            ...parameters.config,
            abortSignal: signal,
            ...(lifted === undefined ? {} : { httpOptions: { fetch: transport!.lifting(lifted) } }),
          },
        } as never),
      catch: classify,
    }).pipe(
      Effect.flatMap((response) => {
        const error = typeof response === "object" && response !== null ? (response as Response).error : undefined
        if (error === undefined || error === null) {
          if (lifted !== undefined && lifted.texts.length > 0) restoreLifted(response, lifted)
          return Effect.succeed(response)
        }
        const code = numberOr(error.code)
        const status = code !== undefined && code >= 400 ? code : 500
        return Effect.fail(classify({ status, message: JSON.stringify({ error }) }))
      }),
    )
  },
})

const isBase64Bytes = (value: unknown): value is Image.Base64Bytes =>
  value instanceof Uint8Array || (Array.isArray(value) && value.every((piece) => piece instanceof Uint8Array))

/** Put each lifted base64 text back where its placeholder is, in every candidate's parts. */
const restoreLifted = (response: unknown, lifted: Transport.Lifted): void => {
  for (const candidate of (response as Response).candidates ?? [])
    for (const part of candidate?.content?.parts ?? []) {
      const inline = (part?.inlineData ?? part?.inline_data) as { data?: unknown } | undefined
      const data = inline?.data
      if (typeof data !== "string" || !data.startsWith(Transport.placeholderPrefix)) continue
      const text = lifted.texts[Number(data.slice(Transport.placeholderPrefix.length))]
      if (text !== undefined) inline!.data = text
    }
}
