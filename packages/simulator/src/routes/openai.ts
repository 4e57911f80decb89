/**
 * The OpenAI chat-completions wire shape for image generation (wire-formats.md §5, §7), in two flavours:
 * OpenRouter (`openrouter`: `modalities` + `image_config`, images in `message.images`, `usage.cost`,
 * its error body with `metadata.error_type`, 402 for insufficient credits, `Retry-After` on 429) and a
 * laozhang-style proxy (`proxy-chat`: the image as a markdown data-URI in `message.content`, no size or
 * aspect-ratio control — always 1K 1:1).
 *
 * @since 0.1.0
 */
import { Catalog, Pricing } from "@peel/contract"
import { type Answer, badInlineImage, commonFault, type ImageAsk, json, unmakeable } from "../Exchange.ts"
import type { FaultKind } from "../Faults.ts"
import { base64Of } from "../Png.ts"
import { retryAfterHeaders, scaledMillis } from "../RetryHint.ts"
import { imageFor, usageOf } from "./gemini.ts"

/** OpenRouter's markup over Google's price, reflected in `usage.cost`. */
export const openRouterMarkup = 1.05
/** laozhang's flat price per image. */
export const proxyFlatPrice = 0.05

const errorTypes: Record<number, string> = {
  400: "invalid_request",
  401: "authentication",
  402: "payment_required",
  403: "permission_denied",
  408: "timeout",
  429: "rate_limit_exceeded",
  500: "internal",
  502: "provider_unavailable",
  503: "provider_overloaded",
  504: "timeout",
}

export const openAiError = (code: number, message: string, headers: Record<string, string> = {}): Answer =>
  json(code, { error: { code, message, metadata: { error_type: errorTypes[code] ?? "unknown" } } }, headers)

export const unauthenticated = (): Answer => openAiError(401, "No auth credentials found")

/** A 429 whose `Retry-After` (and `retry-after-ms`) say to wait `retryAfterMillis` (already time-scaled). */
export const rateLimited = (retryAfterMillis: number, message = "Rate limit exceeded: too many requests"): Answer =>
  openAiError(429, message, retryAfterHeaders(retryAfterMillis))

const promptOf = (body: unknown): string => {
  const messages = (body as { messages?: Array<{ content?: unknown }> } | undefined)?.messages
  if (!Array.isArray(messages)) return ""
  return messages
    .map((message) =>
      typeof message?.content === "string"
        ? message.content
        : Array.isArray(message?.content)
          ? message.content
              .map((part: { text?: unknown }) => (typeof part?.text === "string" ? part.text : ""))
              .join(" ")
          : "",
    )
    .join(" ")
}

/** Parse a chat-completions body into an image ask; a 400 when the model or shape is wrong. */
export const parseAsk = (flavour: "openrouter" | "proxy-chat", body: unknown): ImageAsk | Answer => {
  if (typeof body !== "object" || body === null) return openAiError(400, "Invalid JSON body")
  const {
    model,
    messages,
    image_config: imageConfig,
    seed,
    modalities,
  } = body as {
    model?: unknown
    messages?: unknown
    image_config?: { aspect_ratio?: unknown; image_size?: unknown }
    seed?: unknown
    modalities?: unknown
  }
  if (typeof model !== "string") return openAiError(400, "model is required")
  if (!Array.isArray(messages) || messages.length === 0) return openAiError(400, "messages must be a non-empty array")
  const googleId = model.startsWith("google/") ? model.slice("google/".length) : model
  if (Catalog.findModel(googleId) === undefined || (flavour === "openrouter" && !model.startsWith("google/")))
    return openAiError(400, `${model} is not a valid model ID`)
  const urls = imageUrlsOf(messages)
  for (const url of urls) {
    const match = typeof url === "string" ? /^data:([^;,]+);base64,(.*)$/s.exec(url) : null
    const bad = match === null ? "image_url must be a base64 data: URI" : badInlineImage(match[1], match[2])
    if (bad !== undefined) return openAiError(400, bad)
  }
  if (seed !== undefined && !Number.isInteger(seed)) return openAiError(400, "seed must be an integer")
  const extras = {
    ...(urls.length === 0 ? {} : { images: urls.length }),
    ...(typeof seed === "number" ? { seed } : {}),
    ...(Array.isArray(modalities) && modalities.length === 1 && modalities[0] === "image" ? { imageOnly: true } : {}),
  }
  if (flavour === "proxy-chat")
    return { model: Catalog.resolveModel(googleId), size: "1K", aspectRatio: "1:1", prompt: promptOf(body), ...extras }
  const aspectRatio = imageConfig?.aspect_ratio ?? "1:1"
  const written = imageConfig?.image_size ?? "1K"
  const size = written === "0.5K" ? "512" : written
  if (typeof aspectRatio !== "string" || !(Catalog.AspectRatios as ReadonlyArray<string>).includes(aspectRatio))
    return openAiError(400, `image_config.aspect_ratio ${String(aspectRatio)} is not supported`)
  if (typeof size !== "string" || !(Catalog.Sizes as ReadonlyArray<string>).includes(size))
    return openAiError(400, `image_config.image_size ${String(size)} is not supported`)
  const refused = unmakeable(Catalog.resolveModel(googleId), size, aspectRatio)
  if (refused !== undefined) return openAiError(400, refused)
  return {
    model: Catalog.resolveModel(googleId),
    size: size as ImageAsk["size"],
    aspectRatio,
    prompt: promptOf(body),
    ...extras,
  }
}

/** The `image_url` parts of the messages (reference images). */
const imageUrlsOf = (messages: ReadonlyArray<{ content?: unknown }>): ReadonlyArray<unknown> =>
  messages.flatMap((message) =>
    Array.isArray(message?.content)
      ? message.content
          .filter((part: { type?: unknown }) => part?.type === "image_url")
          .map((part: { image_url?: { url?: unknown } }) => part?.image_url?.url)
      : [],
  )

/** What this flavour bills for a generated image. */
export const priceOf = (flavour: "openrouter" | "proxy-chat", ask: ImageAsk): number =>
  flavour === "proxy-chat"
    ? proxyFlatPrice
    : Math.round(Pricing.costFromUsage(ask.model, usageOf(ask).usage) * openRouterMarkup * 1e6) / 1e6

let completionCounter = 0

/**
 * The answer for a fault (or success) in this flavour's shape. `credential` is the caller's Bearer token:
 * only the `echo-key` faults use it (an error that repeats it, with an HTTP 401 or inside an HTTP 200).
 * `timeScale` scales the `Retry-After` a 429 or 503 advertises; `imageBytes` grows each PNG to at least that size.
 */
export const answer = (
  flavour: "openrouter" | "proxy-chat",
  ask: ImageAsk,
  fault: FaultKind,
  credential = "",
  timeScale = 1,
  imageBytes = 0,
): Answer => {
  const common = commonFault(fault)
  if (common !== undefined) return common
  const echoed = {
    code: 401,
    message: `Incorrect API key provided: ${credential}. You can find your API key in your account settings.`,
    metadata: { error_type: "authentication", raw: `{"error":"invalid key ${credential}"}` },
  }
  switch (fault) {
    case "echo-key":
      return json(401, { error: echoed })
    case "echo-key-200":
      return json(200, {
        id: `gen-sim-${++completionCounter}`,
        error: echoed,
        choices: [{ index: 0, finish_reason: "error", message: { role: "assistant", content: "" } }],
      })
    case "429":
      return rateLimited(scaledMillis(2_000, timeScale))
    case "429-daily":
      return rateLimited(scaledMillis(86_400_000, timeScale), "Rate limit exceeded: daily limit reached")
    case "400":
      return openAiError(400, "Provider returned error: invalid request")
    case "401":
      return openAiError(401, "User not found.")
    case "402":
      return openAiError(402, "Insufficient credits. Add more using https://openrouter.ai/credits")
    case "403":
      return openAiError(403, "Your input was flagged by moderation: violence")
    case "500":
      return openAiError(500, "Internal Server Error")
    case "502":
      return openAiError(502, "Provider returned error")
    case "503":
      return openAiError(
        503,
        "No instances available for this model",
        retryAfterHeaders(scaledMillis(3_000, timeScale)),
      )
    case "504":
      return openAiError(504, "Gateway timeout")
    case "error-in-200":
      return json(200, {
        id: `gen-sim-${++completionCounter}`,
        error: { code: 502, message: "Provider returned error", metadata: { error_type: "provider_unavailable" } },
        choices: [{ index: 0, finish_reason: "error", message: { role: "assistant", content: "" } }],
      })
    default:
      break
  }
  const image = imageFor(ask, fault === "jpeg" ? "jpeg" : "png", imageBytes)
  const base64 = base64Of(image.bytes)
  const data = fault === "truncated" ? base64.slice(0, Math.floor(base64.length / 2)) : base64
  const dataUri = `data:${image.mimeType};base64,${data}`
  const { usage } = usageOf(ask)
  const completionTokens = (usage.outputImageTokens ?? 0) + (usage.outputTextTokens ?? 0)
  const blocked = fault === "safety" || fault === "blocked"
  const textOnly = fault === "text-only"
  const message =
    blocked || textOnly
      ? {
          role: "assistant",
          content: textOnly ? "I can describe it instead: a fox, in red." : "",
          ...(flavour === "openrouter" ? { images: [] } : {}),
        }
      : flavour === "proxy-chat" || fault === "markdown-image"
        ? { role: "assistant", content: `![image](${dataUri})` }
        : {
            role: "assistant",
            content: ask.imageOnly === true ? "" : "Here is your image.",
            images: [{ type: "image_url", image_url: { url: dataUri } }],
          }
  const body = {
    id: `gen-sim-${++completionCounter}`,
    object: "chat.completion",
    created: 1764000000,
    model: flavour === "openrouter" ? `google/${ask.model}` : ask.model,
    ...(flavour === "openrouter" ? { provider: "Google" } : {}),
    choices: [
      {
        index: 0,
        finish_reason: blocked ? "content_filter" : "stop",
        ...(flavour === "openrouter" ? { native_finish_reason: blocked ? "IMAGE_SAFETY" : "STOP" } : {}),
        message,
      },
    ],
    usage: {
      prompt_tokens: usage.inputTokens,
      completion_tokens: completionTokens,
      total_tokens: (usage.inputTokens ?? 0) + completionTokens,
      ...(flavour === "openrouter"
        ? {
            cost: blocked || textOnly ? 0 : priceOf("openrouter", ask),
            is_byok: false,
            completion_tokens_details: { reasoning_tokens: usage.thoughtTokens, image_tokens: usage.outputImageTokens },
          }
        : {}),
    },
  }
  return { ...json(200, body), delayMillis: fault === "slow" ? 120_000 : 0 }
}

/** Whether a fault's answer is a billed image in this wire family. */
export const billable = (fault: FaultKind): boolean =>
  fault === "ok" || fault === "slow" || fault === "jpeg" || fault === "markdown-image" || fault === "truncated"
