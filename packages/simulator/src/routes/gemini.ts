/**
 * The Gemini `generateContent` wire shape (wire-formats.md §1), shared by four routes: the Gemini API
 * (`gemini`), a proxy's Gemini-native route with Bearer auth (`proxy-gemini`), Vertex AI with a project
 * and location (`vertex`) and Vertex express mode (`vertex-express`). Errors are `google.rpc.Status`
 * bodies whose HTTP status equals `error.code`; safety blocks are HTTP 200.
 *
 * @since 0.1.0
 */
import { Catalog, Pricing } from "@peel/contract"
import { type Answer, badInlineImage, commonFault, type ImageAsk, json, unmakeable } from "../Exchange.ts"
import type { FaultKind } from "../Faults.ts"
import { base64Of, colourOf, jpeg, padded, png } from "../Png.ts"
import { retryDelayText, scaledMillis } from "../RetryHint.ts"

const statusNames: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  402: "FAILED_PRECONDITION",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
}

export const googleError = (code: number, message: string, details: ReadonlyArray<unknown> = []): Answer =>
  json(code, {
    error: { code, message, status: statusNames[code] ?? "UNKNOWN", ...(details.length === 0 ? {} : { details }) },
  })

/** The per-minute upstream wait a 429 fault advertises, before time scaling. */
export const rateLimitDelayMillis = 34_000

/**
 * A 429 RESOURCE_EXHAUSTED: per day (no RetryInfo), or per minute with `RetryInfo.retryDelay` of
 * `retryAfterMillis` (already time-scaled).
 */
export const rateLimited = (daily: boolean, retryAfterMillis = rateLimitDelayMillis): Answer =>
  googleError(
    429,
    daily
      ? "You exceeded your current quota, please check your plan and billing details. Quota exceeded for metric: generativelanguage.googleapis.com/generate_requests_per_model_per_day"
      : "Resource exhausted. Please try again later.",
    [
      {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        violations: [
          daily
            ? {
                quotaMetric: "generativelanguage.googleapis.com/generate_requests_per_model_per_day",
                quotaId: "GenerateRequestsPerDayPerProjectPerModel",
              }
            : {
                quotaMetric: "generativelanguage.googleapis.com/generate_requests_per_model",
                quotaId: "GenerateRequestsPerMinutePerProjectPerModel",
              },
        ],
      },
      ...(daily
        ? []
        : [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: retryDelayText(retryAfterMillis) }]),
    ],
  )

/** The error a missing or unusable credential gets. */
export const unauthenticated = (): Answer =>
  googleError(
    403,
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
  )

const textOf = (body: unknown): string => {
  const contents = (body as { contents?: Array<{ parts?: Array<{ text?: unknown }> }> } | undefined)?.contents
  if (!Array.isArray(contents)) return ""
  return contents
    .flatMap((content) => (Array.isArray(content?.parts) ? content.parts : []))
    .map((part) => (typeof part?.text === "string" ? part.text : ""))
    .join(" ")
}

/** Parse a generateContent body; a 400 in Google's shape when it is not acceptable. */
export const parseAsk = (model: string, body: unknown): ImageAsk | Answer => {
  if (Catalog.findModel(model) === undefined || Catalog.resolveModel(model) !== model)
    return googleError(404, `models/${model} is not found for API version v1, or is not supported for generateContent.`)
  if (typeof body !== "object" || body === null || !Array.isArray((body as { contents?: unknown }).contents))
    return googleError(400, "Invalid JSON payload received. Required field 'contents' is missing.")
  const config = ((body as { generationConfig?: unknown }).generationConfig ?? {}) as {
    imageConfig?: { aspectRatio?: unknown; imageSize?: unknown }
    seed?: unknown
    responseModalities?: unknown
  }
  const inline = inlineImagesOf(body)
  for (const image of inline) {
    const bad = badInlineImage(image?.mimeType ?? image?.mime_type, image?.data)
    if (bad !== undefined) return googleError(400, bad)
  }
  if (config.seed !== undefined && !Number.isInteger(config.seed))
    return googleError(400, `Invalid value at 'generation_config.seed' (${String(config.seed)}).`)
  const aspectRatio = config.imageConfig?.aspectRatio ?? "1:1"
  const imageSize = config.imageConfig?.imageSize ?? "1K"
  if (typeof aspectRatio !== "string" || !(Catalog.AspectRatios as ReadonlyArray<string>).includes(aspectRatio))
    return googleError(400, `Invalid value at 'generation_config.image_config.aspect_ratio' (${String(aspectRatio)}).`)
  if (typeof imageSize !== "string" || !(Catalog.Sizes as ReadonlyArray<string>).includes(imageSize))
    return googleError(
      400,
      `Invalid value at 'generation_config.image_config.image_size' (${String(imageSize)}): use 512, 1K, 2K or 4K.`,
    )
  const refused = unmakeable(model, imageSize, aspectRatio)
  if (refused !== undefined) return googleError(400, refused)
  const modalities = Array.isArray(config.responseModalities) ? config.responseModalities : []
  return {
    model,
    size: imageSize as ImageAsk["size"],
    aspectRatio,
    prompt: textOf(body),
    ...(inline.length === 0 ? {} : { images: inline.length }),
    ...(typeof config.seed === "number" ? { seed: config.seed } : {}),
    ...(modalities.length === 1 && modalities[0] === "IMAGE" ? { imageOnly: true } : {}),
  }
}

type InlineImage = { mimeType?: unknown; mime_type?: unknown; data?: unknown } | null | undefined

/** The reference images (`inlineData` / `inline_data` parts) a generateContent body carries. */
const inlineImagesOf = (body: unknown): ReadonlyArray<InlineImage> => {
  const contents = (
    body as { contents?: Array<{ parts?: Array<{ inlineData?: InlineImage; inline_data?: InlineImage }> }> }
  ).contents
  if (!Array.isArray(contents)) return []
  return contents
    .flatMap((content) => (Array.isArray(content?.parts) ? content.parts : []))
    .filter((part) => part?.inlineData !== undefined || part?.inline_data !== undefined)
    .map((part) => part.inlineData ?? part.inline_data)
}

/** Token usage the real API reports for this ask. */
export const usageOf = (ask: ImageAsk) => {
  const info = Catalog.findModel(ask.model)!
  const textPromptTokens = Pricing.estimatePromptTokens(ask.prompt)
  // each reference image counts the model's input image tokens (Pro 560, Flash 258)
  const inputImageTokens = (ask.images ?? 0) * info.prices.inputImageTokens
  const promptTokens = textPromptTokens + inputImageTokens
  const imageTokens = info.outputTokens[ask.size] ?? 0
  const textTokens = ask.imageOnly === true ? 0 : 6
  const thoughtTokens = info.acceptsImageSize ? 96 : 0
  return {
    usage: { inputTokens: promptTokens, outputImageTokens: imageTokens, outputTextTokens: textTokens, thoughtTokens },
    usageMetadata: {
      promptTokenCount: promptTokens,
      candidatesTokenCount: imageTokens + textTokens,
      ...(thoughtTokens > 0 ? { thoughtsTokenCount: thoughtTokens } : {}),
      totalTokenCount: promptTokens + imageTokens + textTokens + thoughtTokens,
      promptTokensDetails: [
        { modality: "TEXT", tokenCount: textPromptTokens },
        ...(inputImageTokens > 0 ? [{ modality: "IMAGE", tokenCount: inputImageTokens }] : []),
      ],
      candidatesTokensDetails: [{ modality: "IMAGE", tokenCount: imageTokens }],
    },
  }
}

/**
 * The image bytes for an ask: exact catalog dimensions, colour from the prompt; a PNG grown to at least
 * `imageBytes` when given (the simulator's `imageBytes` option).
 */
export const imageFor = (
  ask: ImageAsk,
  format: "png" | "jpeg" = "png",
  imageBytes = 0,
): { bytes: Buffer; mimeType: string } => {
  const [width, height] = Catalog.dimensionsOf(ask.model, ask.size, ask.aspectRatio as Catalog.AspectRatio)!
  return format === "jpeg"
    ? { bytes: jpeg(width, height), mimeType: "image/jpeg" }
    : { bytes: padded(png(width, height, colourOf(ask.prompt)), imageBytes), mimeType: "image/png" }
}

let responseCounter = 0

/** A successful GenerateContentResponse (as JSON), or a 200 that carries a content fault. */
export const generateResponse = (ask: ImageAsk, fault: FaultKind, imageBytes = 0): Record<string, unknown> => {
  const { usageMetadata } = usageOf(ask)
  const image = imageFor(ask, fault === "jpeg" ? "jpeg" : "png", imageBytes)
  const base64 = base64Of(image.bytes)
  const thoughts = Catalog.findModel(ask.model)!.acceptsImageSize
    ? [{ text: "Composing the scene and lighting.", thought: true }]
    : []
  const common = { modelVersion: ask.model, responseId: `sim-${++responseCounter}` }
  switch (fault) {
    case "safety":
      return {
        candidates: [
          {
            content: { role: "model", parts: [] },
            finishReason: "IMAGE_SAFETY",
            finishMessage: "Unable to show the generated image.",
            index: 0,
          },
        ],
        usageMetadata: {
          promptTokenCount: usageMetadata.promptTokenCount,
          totalTokenCount: usageMetadata.promptTokenCount,
        },
        ...common,
      }
    case "blocked":
      return {
        promptFeedback: { blockReason: "PROHIBITED_CONTENT", blockReasonMessage: "The prompt was blocked." },
        usageMetadata: {
          promptTokenCount: usageMetadata.promptTokenCount,
          totalTokenCount: usageMetadata.promptTokenCount,
        },
        ...common,
      }
    case "text-only":
      return {
        candidates: [
          {
            content: { role: "model", parts: [...thoughts, { text: "I can describe it instead: a fox, in red." }] },
            finishReason: "STOP",
            index: 0,
          },
        ],
        usageMetadata: { ...usageMetadata, candidatesTokensDetails: [{ modality: "TEXT", tokenCount: 12 }] },
        ...common,
      }
    case "markdown-image":
      return {
        candidates: [
          {
            content: {
              role: "model",
              parts: [{ text: `Here is your image.\n\n![image](data:${image.mimeType};base64,${base64})` }],
            },
            finishReason: "STOP",
            index: 0,
          },
        ],
        usageMetadata,
        ...common,
      }
    default: {
      const data = fault === "truncated" ? base64.slice(0, Math.floor(base64.length / 2)) : base64
      return {
        candidates: [
          {
            content: {
              role: "model",
              parts: [
                ...thoughts,
                ...(ask.imageOnly === true
                  ? []
                  : [{ text: "Here is your image.", thoughtSignature: "c2ltdWxhdG9yLXNpZ25hdHVyZQ==" }]),
                { inlineData: { mimeType: image.mimeType, data }, thoughtSignature: "c2ltdWxhdG9yLXNpZ25hdHVyZQ==" },
              ],
            },
            finishReason: "STOP",
            index: 0,
            safetyRatings: [],
          },
        ],
        usageMetadata,
        ...common,
      }
    }
  }
}

/**
 * The answer a Gemini-shaped route gives for a fault (or success). `credential` is what the caller sent
 * (API key or Bearer token): only the `echo-key` faults use it, to test that clients never repeat it.
 * `timeScale` scales the retry delay a 429 advertises; `imageBytes` grows each PNG to at least that size.
 */
export const answer = (
  ask: ImageAsk,
  fault: FaultKind,
  stream: boolean,
  credential = "",
  timeScale = 1,
  imageBytes = 0,
): Answer => {
  const common = commonFault(fault)
  if (common !== undefined) return common
  switch (fault) {
    case "echo-key":
      return json(401, echoedKeyError(credential))
    case "echo-key-200":
      return json(200, echoedKeyError(credential))
    case "429":
      return rateLimited(false, scaledMillis(rateLimitDelayMillis, timeScale))
    case "429-daily":
      return rateLimited(true)
    case "400":
      return googleError(400, "Request contains an invalid argument.")
    case "401":
      return json(400, {
        error: {
          code: 400,
          message: "API key not valid. Please pass a valid API key.",
          status: "INVALID_ARGUMENT",
          details: [
            {
              "@type": "type.googleapis.com/google.rpc.ErrorInfo",
              reason: "API_KEY_INVALID",
              domain: "googleapis.com",
            },
          ],
        },
      })
    case "403":
      return googleError(
        403,
        "This API method requires billing to be enabled. Please enable billing on project #1234 and retry.",
      )
    case "402":
      return googleError(400, "FAILED_PRECONDITION: Billing is not enabled for this project.")
    case "500":
      return googleError(
        500,
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
      )
    case "502":
      return googleError(502, "Bad gateway.")
    case "503":
      return googleError(503, "The model is overloaded. Please try again later.")
    case "504":
      return googleError(504, "Deadline expired before operation could complete.")
    case "error-in-200":
      return json(200, { error: { code: 503, message: "upstream overloaded", status: "UNAVAILABLE" } })
    default: {
      const response = generateResponse(ask, fault, imageBytes)
      const delayMillis = fault === "slow" ? 120_000 : 0
      if (stream)
        return {
          status: 200,
          contentType: "text/event-stream",
          body: `data: ${JSON.stringify(response)}\r\n\r\n`,
          delayMillis,
        }
      return { ...json(200, response), delayMillis }
    }
  }
}

/** A `google.rpc.Status` body that repeats the caller's credential, as a careless upstream or proxy might. */
const echoedKeyError = (credential: string) => ({
  error: {
    code: 401,
    message: `Request had invalid authentication credentials: ${credential} was rejected. Expected a valid API key or OAuth 2 access token.`,
    status: "UNAUTHENTICATED",
    details: [
      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        reason: "ACCESS_TOKEN_TYPE_UNSUPPORTED",
        domain: "googleapis.com",
        metadata: { credential },
      },
    ],
  },
})

/** Whether a fault's answer is a billed image. */
export const billable = (fault: FaultKind): boolean =>
  fault === "ok" || fault === "slow" || fault === "jpeg" || fault === "markdown-image" || fault === "truncated"
