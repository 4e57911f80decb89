/**
 * The Gemini API's `generateContent` wire on the gateway's side: the request body decoded with a Schema
 * (strict like Google's: an unknown field is a 400 naming it) and mapped onto one {@link ImageRequest};
 * an {@link Outcome} answered in Gemini's shape; gateway errors as `google.rpc.Status`.
 *
 * Mapping (wire-formats.md §1):
 * - the prompt is the text of the user turns' parts (joined by a blank line); `thought` parts are skipped;
 * - every `inlineData` part (user or model turns: a chat's earlier image is what the next turn edits) is a
 *   reference image, in order; `fileData` is refused (send the bytes inline);
 * - `generationConfig.imageConfig.{aspectRatio,imageSize}` → `aspectRatio`, `size` (never dropped: an
 *   unknown value is a 400); `responseModalities: ["IMAGE"]` → image only (without IMAGE: a 400);
 *   `seed` → `seed`; `candidateCount` above 1 is refused;
 * - `safetySettings`, `systemInstruction`, `temperature`, `topP` → the Gemini channels' provider options;
 * - `topK`, `maxOutputTokens`, `thinkingConfig`, `stopSequences`, penalties and `labels` are accepted and
 *   have no effect on an image; `tools`, `toolConfig` and `cachedContent` are refused.
 *
 * Keys are accepted in camelCase or snake_case (`inline_data`, `generation_config`), as Google does.
 *
 * @since 0.1.0
 */
import { Catalog, Errors as CoreErrors, Issues } from "@peel/contract"
import type { ImageRequest } from "@peel/contract/Request"
import { Result, Schema } from "effect"
import { BadRequest, type GatewayError, httpStatus, NotFound } from "../Errors.ts"
import type { Outcome } from "../Execute.ts"
import { Base64 } from "../JsonBytes.ts"

// ---------------------------------------------------------------------------------------------------
// request

const Blob = Schema.Struct({ mimeType: Schema.String, data: Schema.String })

const Part = Schema.Struct({
  text: Schema.optional(Schema.String),
  inlineData: Schema.optional(Blob),
  fileData: Schema.optional(Schema.Unknown),
  thought: Schema.optional(Schema.Boolean),
  thoughtSignature: Schema.optional(Schema.String),
})

const Content = Schema.Struct({
  role: Schema.optional(Schema.Literals(["user", "model"])),
  parts: Schema.Array(Part),
})

// Checked here, under Gemini's field names (the model's own limits are checked when the request is planned).
const ImageConfig = Schema.Struct({
  aspectRatio: Schema.optional(Schema.Literals(Catalog.AspectRatios)),
  imageSize: Schema.optional(Schema.Literals(Catalog.Sizes)),
})

const GenerationConfig = Schema.Struct({
  responseModalities: Schema.optional(Schema.Array(Schema.Literals(["TEXT", "IMAGE", "AUDIO"]))),
  imageConfig: Schema.optional(ImageConfig),
  seed: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2_147_483_647 }))),
  candidateCount: Schema.optional(Schema.Int),
  temperature: Schema.optional(Schema.Number),
  topP: Schema.optional(Schema.Number),
  topK: Schema.optional(Schema.Number),
  maxOutputTokens: Schema.optional(Schema.Int),
  stopSequences: Schema.optional(Schema.Array(Schema.String)),
  presencePenalty: Schema.optional(Schema.Number),
  frequencyPenalty: Schema.optional(Schema.Number),
  responseMimeType: Schema.optional(Schema.String),
  thinkingConfig: Schema.optional(
    Schema.Struct({
      includeThoughts: Schema.optional(Schema.Boolean),
      thinkingBudget: Schema.optional(Schema.Number),
      thinkingLevel: Schema.optional(Schema.String),
    }),
  ),
})

const SafetySetting = Schema.Struct({ category: Schema.String, threshold: Schema.String })

/** The body of `generateContent` / `streamGenerateContent`. @category request */
export const GenerateContentRequest = Schema.Struct({
  contents: Schema.Array(Content),
  generationConfig: Schema.optional(GenerationConfig),
  safetySettings: Schema.optional(Schema.Array(SafetySetting)),
  systemInstruction: Schema.optional(Schema.Union([Content, Schema.String])),
  tools: Schema.optional(Schema.Array(Schema.Unknown)),
  toolConfig: Schema.optional(Schema.Unknown),
  cachedContent: Schema.optional(Schema.String),
  labels: Schema.optional(Schema.Record(Schema.String, Schema.String)),
  /** Some clients repeat the model in the body; the path's model is the one used. */
  model: Schema.optional(Schema.String),
})
/** @category request */
export type GenerateContentRequest = typeof GenerateContentRequest.Type

const camel = (key: string): string => key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase())

/** Keys of every object in camelCase (Google takes `inline_data` as well as `inlineData`); values unchanged. */
const camelKeys = (value: unknown, depth = 0): unknown => {
  if (depth > 12 || typeof value !== "object" || value === null) return value
  if (Array.isArray(value)) return value.map((item) => camelKeys(item, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) {
    // `labels` holds the caller's own keys: leave them as written.
    out[camel(key)] = key === "labels" ? item : camelKeys(item, depth + 1)
  }
  return out
}

const strict = { errors: "all", onExcessProperty: "error" } as const

const describe = (error: Schema.SchemaError, input: unknown): string =>
  Issues.flattenIssues(error)
    .slice(0, 8)
    .map((found) => Issues.withFound(found, input))
    .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`))
    .join("; ")

/** Decode a body strictly; every problem (at most 8) in one message. @category request */
export const decodeBody = (body: unknown): Result.Result<GenerateContentRequest, BadRequest> => {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return Result.fail(new BadRequest({ message: "the body must be a JSON object with contents" }))
  const input = camelKeys(body)
  return Result.mapError(
    Schema.decodeUnknownResult(GenerateContentRequest)(input, strict),
    (error) => new BadRequest({ message: CoreErrors.redact(describe(error, input), [], 600) }),
  )
}

/** Model names in a path: `gemini-3-pro-image`, `models/gemini-3-pro-image`, an alias, or `auto` (the pipeline routes). @category request */
export const modelOf = (name: string): Result.Result<string | undefined, NotFound> => {
  const bare = decodeURIComponent(name).replace(/^models\//, "")
  if (bare === "auto") return Result.succeed(undefined)
  if (Catalog.findModel(bare) === undefined)
    return Result.fail(
      new NotFound({
        message: `models/${CoreErrors.redact(bare, [], 80)} is not found; known: auto, ${Object.keys(Catalog.models).join(", ")}`,
      }),
    )
  return Result.succeed(bare)
}

const textOf = (content: { readonly parts: ReadonlyArray<{ readonly text?: string | undefined }> }): string =>
  content.parts
    .map((part) => part.text ?? "")
    .filter((text) => text.trim() !== "")
    .join("\n")

/**
 * The ImageRequest a Gemini body asks for (not yet checked against the ImageRequest Schema: Execute does
 * that, and its message names the field). `providerOptionsFor` gives the provider options for the channels
 * that take Gemini's (safety settings, system instruction, sampling).
 *
 * @category request
 */
export const toImageRequest = (
  body: GenerateContentRequest,
  model: string | undefined,
  providerOptionsFor: (options: Record<string, unknown>) => Record<string, Record<string, unknown>> | undefined,
): Result.Result<Record<string, unknown>, BadRequest> => {
  const bad = (message: string) => Result.fail(new BadRequest({ message }))
  if (body.contents.length === 0) return bad("contents must not be empty")
  if (body.tools !== undefined && body.tools.length > 0)
    return bad("tools are not supported by this gateway (image generation only)")
  if (body.toolConfig !== undefined) return bad("toolConfig is not supported by this gateway")
  if (body.cachedContent !== undefined) return bad("cachedContent is not supported by this gateway")
  const config = body.generationConfig ?? {}
  if (config.candidateCount !== undefined && config.candidateCount !== 1)
    return bad("generationConfig.candidateCount: only 1 candidate per request is supported")
  const modalities = config.responseModalities
  if (modalities !== undefined && !modalities.includes("IMAGE"))
    return bad("generationConfig.responseModalities must include IMAGE: this gateway makes images")
  if (modalities?.includes("AUDIO") === true)
    return bad("generationConfig.responseModalities: AUDIO is not supported by image models")
  const prompts: Array<string> = []
  const images: Array<{ data: string; mimeType: string }> = []
  for (const [index, content] of body.contents.entries()) {
    for (const [partIndex, part] of content.parts.entries()) {
      if (part.thought === true) continue
      if (part.fileData !== undefined)
        return bad(`contents[${index}].parts[${partIndex}].fileData: not supported; send the image as inlineData`)
      if (part.inlineData !== undefined) images.push({ data: part.inlineData.data, mimeType: part.inlineData.mimeType })
    }
    if ((content.role ?? "user") === "user") {
      const text = textOf(content)
      if (text !== "") prompts.push(text)
    }
  }
  if (prompts.length === 0) return bad("contents: no text prompt in the user turns")
  const systemInstruction =
    body.systemInstruction === undefined
      ? undefined
      : typeof body.systemInstruction === "string"
        ? body.systemInstruction
        : textOf(body.systemInstruction)
  const options: Record<string, unknown> = {
    ...(body.safetySettings === undefined ? {} : { safetySettings: body.safetySettings }),
    ...(systemInstruction === undefined || systemInstruction === "" ? {} : { systemInstruction }),
    ...(config.temperature === undefined ? {} : { temperature: config.temperature }),
    ...(config.topP === undefined ? {} : { topP: config.topP }),
  }
  const providerOptions = Object.keys(options).length === 0 ? undefined : providerOptionsFor(options)
  if (Object.keys(options).length > 0 && providerOptions === undefined)
    return bad(
      "safetySettings, systemInstruction, temperature and topP need a Gemini channel (google-ai-studio, vertex-ai) that takes them; this pipeline has none, or they are invalid",
    )
  const imageConfig = config.imageConfig ?? {}
  return Result.succeed({
    prompt: prompts.join("\n\n"),
    ...(model === undefined ? {} : { model }),
    ...(imageConfig.imageSize === undefined ? {} : { size: imageConfig.imageSize }),
    ...(imageConfig.aspectRatio === undefined ? {} : { aspectRatio: imageConfig.aspectRatio }),
    ...(images.length === 0 ? {} : { images }),
    ...(config.seed === undefined ? {} : { seed: config.seed }),
    ...(modalities !== undefined && !modalities.includes("TEXT") ? { imageOnly: true } : {}),
    ...(providerOptions === undefined ? {} : { providerOptions }),
  } satisfies Partial<Record<keyof ImageRequest, unknown>>)
}

// ---------------------------------------------------------------------------------------------------
// response

/** Gemini's `GenerateContentResponse` for an outcome: the model's text first, then each image. @category response */
export const toResponse = (outcome: Outcome): Record<string, unknown> => {
  const parts: Array<Record<string, unknown>> = []
  if (outcome.text !== undefined) parts.push({ text: outcome.text })
  for (const image of outcome.images)
    parts.push({ inlineData: { mimeType: image.mimeType, data: new Base64(image.bytes) } })
  const usage = outcome.usage
  const prompt = usage?.inputTokens ?? 0
  const imageTokens = usage?.outputImageTokens ?? 0
  const textTokens = usage?.outputTextTokens ?? 0
  const thoughts = usage?.thoughtTokens ?? 0
  return {
    candidates: [{ content: { role: "model", parts }, finishReason: "STOP", index: 0 }],
    usageMetadata: {
      promptTokenCount: prompt,
      candidatesTokenCount: imageTokens + textTokens,
      ...(thoughts === 0 ? {} : { thoughtsTokenCount: thoughts }),
      totalTokenCount: prompt + imageTokens + textTokens + thoughts,
      promptTokensDetails: [{ modality: "TEXT", tokenCount: prompt }],
      candidatesTokensDetails: [
        { modality: "IMAGE", tokenCount: imageTokens },
        ...(textTokens === 0 ? [] : [{ modality: "TEXT", tokenCount: textTokens }]),
      ],
    },
    modelVersion: outcome.model,
    responseId: outcome.requestId,
  }
}

const promptBlockReasons = new Set([
  "SAFETY",
  "OTHER",
  "BLOCKLIST",
  "PROHIBITED_CONTENT",
  "MODEL_ARMOR",
  "JAILBREAK",
  "BLOCKED_REASON_UNSPECIFIED",
])

/**
 * A safety block as Gemini reports it: HTTP 200, no image — `promptFeedback.blockReason` when the prompt
 * was blocked, else a candidate with the block's `finishReason` (`IMAGE_SAFETY`, ...). @category response
 */
export const blockedResponse = (reason: string, message: string, model: string, requestId: string) =>
  promptBlockReasons.has(reason) || /prompt was blocked/.test(message)
    ? {
        promptFeedback: { blockReason: reason, blockReasonMessage: message },
        usageMetadata: { promptTokenCount: 0, totalTokenCount: 0 },
        modelVersion: model,
        responseId: requestId,
      }
    : {
        candidates: [{ content: { role: "model", parts: [] }, finishReason: reason, finishMessage: message, index: 0 }],
        usageMetadata: { promptTokenCount: 0, totalTokenCount: 0 },
        modelVersion: model,
        responseId: requestId,
      }

/** Google's status name for each gateway error. @category errors */
export const statusName = (error: GatewayError): string => {
  switch (error._tag) {
    case "BadRequest":
    case "PayloadTooLarge":
    case "MethodNotAllowed":
    case "SafetyBlocked":
      return "INVALID_ARGUMENT"
    case "Unauthorized":
      return "UNAUTHENTICATED"
    case "Forbidden":
      return "PERMISSION_DENIED"
    case "NotFound":
      return "NOT_FOUND"
    case "KeyRateLimited":
    case "KeyBudgetExhausted":
    case "PipelineBudgetExhausted":
      return "RESOURCE_EXHAUSTED"
    case "Internal":
      return "INTERNAL"
    case "Unavailable":
      return "UNAVAILABLE"
  }
}

/** `{error:{code,message,status,details}}` (`google.rpc.Status`), with RetryInfo when the error carries a delay. @category errors */
export const errorBody = (error: GatewayError): Record<string, unknown> => {
  const retryAfter = "retryAfterSeconds" in error ? Math.max(1, Math.ceil(error.retryAfterSeconds)) : undefined
  const reason =
    error._tag === "KeyRateLimited"
      ? "KEY_RATE_LIMITED"
      : error._tag === "KeyBudgetExhausted"
        ? "KEY_BUDGET_EXHAUSTED"
        : error._tag === "PipelineBudgetExhausted"
          ? "PIPELINE_BUDGET_EXHAUSTED"
          : error._tag === "Unauthorized"
            ? "API_KEY_INVALID"
            : undefined
  const details = [
    ...(reason === undefined
      ? []
      : [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason, domain: "peel.gateway" }]),
    ...(retryAfter === undefined
      ? []
      : [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${retryAfter}s` }]),
  ]
  return {
    error: {
      code: httpStatus(error),
      message: error.message,
      status: statusName(error),
      ...(details.length === 0 ? {} : { details }),
    },
  }
}
