/**
 * The OpenAI-shaped request bodies the gateway accepts, as Schemas decoded strictly (an unknown key is a
 * 400 naming it, every problem in one message), and their mapping onto one Peel `ImageRequest` each:
 *
 * - `POST /v1/images/generations` (JSON) and `POST /v1/images/edits` (multipart: `image` or `image[]`,
 *   up to 14; a `mask` is refused while no channel can honour it): `prompt`, `model`, `n`, `size`,
 *   `quality` (through {@link Sizes.fromOpenAi}), `response_format` (`b64_json` | `url`), `output_format`.
 * - `POST /v1/chat/completions` with `modalities: ["image","text"]` (or `["image"]`: image only) and
 *   OpenRouter's `image_config` (`aspect_ratio`, `image_size`), `stream` allowed (one chunk per choice, as
 *   OpenRouter streams images in `delta.images`): every system and user text part, in order,
 *   is the prompt; every `image_url` part of a user message (a `data:` URI or an `http(s)://` URL) is a
 *   reference image; assistant turns are ignored (each call makes new images).
 *
 * `model`: a Peel catalog id or alias (`gemini-3-pro-image`, `nano-banana-pro`, OpenRouter's
 * `google/gemini-3-pro-image`) asks for that model; OpenAI's own image model names (`gpt-image-1`,
 * `dall-e-3`, …) and `auto` leave the model to the pipeline's routing, so an app written for OpenAI works
 * unchanged; any other name is a 404 `model_not_found`.
 *
 * @since 0.5.0
 */
import { Catalog, Issues, type Request } from "@peel/contract"
import { Result, Schema } from "effect"
import * as Sizes from "./Sizes.ts"

/** Why a body is refused before anything runs: a 400 (or a 404 for an unknown model). @category models */
export interface Refusal {
  readonly _tag: "Invalid" | "UnknownModel"
  readonly message: string
  /** The field at fault, OpenAI's `error.param`. */
  readonly param?: string | undefined
}

/** OpenAI model names that mean "whatever the pipeline routes to". @category models */
export const pipelineModelNames: ReadonlyArray<string> = [
  "auto",
  "peel",
  "gpt-image-1",
  "gpt-image-1-mini",
  "gpt-image-1.5",
  "dall-e-2",
  "dall-e-3",
]

/**
 * The model a client named, as Peel's request `model`: `undefined` leaves it to the pipeline.
 *
 * @category mapping
 */
export const modelOf = (name: string | undefined): Result.Result<string | undefined, Refusal> => {
  if (name === undefined || pipelineModelNames.includes(name)) return Result.succeed(undefined)
  const bare = name.replace(/^google\//, "")
  if (Catalog.findModel(bare) !== undefined) return Result.succeed(bare)
  return Result.fail({
    _tag: "UnknownModel",
    param: "model",
    message: `The model \`${name}\` does not exist. Use one of ${Object.keys(Catalog.models).join(", ")}, an alias (${Object.keys(Catalog.aliases).join(", ")}) or ${pipelineModelNames.join(", ")} (the pipeline's choice).`,
  })
}

const nullable = <S extends Schema.Top>(schema: S) => Schema.optional(Schema.NullOr(schema))

const Prompt = Schema.String.check(
  Schema.makeFilter((prompt: string) => prompt.trim().length > 0 || "prompt must not be empty or only whitespace"),
)
const Count = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10 }))

/** @category schemas */
export const ResponseFormat = Schema.Literals(["b64_json", "url"])
/** @category models */
export type ResponseFormat = typeof ResponseFormat.Type
/** @category schemas */
export const OutputFormat = Schema.Literals(["png", "jpeg", "webp"])

const imageFields = {
  prompt: Prompt,
  model: nullable(Schema.String),
  n: nullable(Count),
  size: nullable(Schema.String),
  quality: nullable(Schema.String),
  response_format: nullable(ResponseFormat),
  /**
   * Accepted and reported, never converted: the answer carries the format the model made (its data URI and
   * `output_format` say which), since Peel does not re-encode paid images.
   */
  output_format: nullable(OutputFormat),
  /** `transparent` is refused: Gemini image models make opaque images. */
  background: nullable(Schema.Literals(["auto", "opaque"])),
  /** Accepted and ignored (the upstream's own safety settings apply). */
  moderation: nullable(Schema.Literals(["auto", "low"])),
  /** Accepted and ignored (no re-encoding). */
  output_compression: nullable(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 100 }))),
  /** DALL·E 3's style: accepted and ignored. */
  style: nullable(Schema.Literals(["vivid", "natural"])),
  /** Only `false`: images come back in one answer. */
  stream: nullable(Schema.Literal(false)),
  user: nullable(Schema.String),
}

/** `POST /v1/images/generations`. @category schemas */
export const ImagesGenerationBody = Schema.Struct(imageFields)

/** The text fields of `POST /v1/images/edits` (files travel beside them). @category schemas */
export const ImagesEditFields = Schema.Struct({
  ...imageFields,
  /** Accepted and ignored: Gemini keeps the reference's detail on its own. */
  input_fidelity: nullable(Schema.Literals(["high", "low"])),
})

const TextPart = Schema.Struct({ type: Schema.Literal("text"), text: Schema.String })
const ImagePart = Schema.Struct({
  type: Schema.Literal("image_url"),
  image_url: Schema.Struct({
    url: Schema.String.check(
      Schema.isPattern(/^(data:image\/[a-z0-9.+-]+;base64,|https?:\/\/)/i, {
        message: "image_url.url must be a data:image/...;base64, URI or an http(s):// URL",
      }),
    ),
    detail: Schema.optional(Schema.Literals(["auto", "low", "high"])),
  }),
})

const SystemMessage = Schema.Struct({
  role: Schema.Literals(["system", "developer"]),
  content: Schema.Union([Schema.String, Schema.Array(TextPart)]),
  name: Schema.optional(Schema.String),
})
const UserMessage = Schema.Struct({
  role: Schema.Literal("user"),
  content: Schema.Union([Schema.String, Schema.Array(Schema.Union([TextPart, ImagePart]))]),
  name: Schema.optional(Schema.String),
})
/** An earlier answer sent back as history: accepted, not used. */
const AssistantMessage = Schema.Struct({
  role: Schema.Literal("assistant"),
  content: Schema.optional(Schema.Unknown),
  images: Schema.optional(Schema.Unknown),
  refusal: Schema.optional(Schema.Unknown),
  reasoning: Schema.optional(Schema.Unknown),
  annotations: Schema.optional(Schema.Unknown),
  name: Schema.optional(Schema.String),
})

const messageSchemas = {
  system: SystemMessage,
  developer: SystemMessage,
  user: UserMessage,
  assistant: AssistantMessage,
} as const
type Message = typeof SystemMessage.Type | typeof UserMessage.Type | typeof AssistantMessage.Type

const decodeMessage = (input: unknown, index: number): Result.Result<Message, Refusal> => {
  const role = typeof input === "object" && input !== null ? (input as { role?: unknown }).role : undefined
  if (typeof role !== "string" || !Object.hasOwn(messageSchemas, role))
    return Result.fail(
      invalid(
        `messages.${index}.role must be one of ${Object.keys(messageSchemas).join(", ")}, got ${Issues.describeValue(role)}`,
        `messages.${index}.role`,
      ),
    )
  return decodeStrict(messageSchemas[role as keyof typeof messageSchemas], `messages.${index}`)(input)
}

/** Image sizes for `image_config.image_size`: OpenRouter's `0.5K` is Peel's `512`. */
const chatImageSizes = ["0.5K", "512", "1K", "2K", "4K"] as const

/** `POST /v1/chat/completions` for images. @category schemas */
export const ChatCompletionBody = Schema.Struct({
  model: Schema.String,
  /** Each message is decoded by its role (see {@link messageSchemas}), so a problem is named exactly. */
  messages: Schema.Array(Schema.Unknown).check(Schema.isMinLength(1)),
  modalities: nullable(Schema.Array(Schema.Literals(["image", "text"]))),
  image_config: nullable(
    Schema.Struct({
      aspect_ratio: Schema.optional(Schema.Literals(Catalog.AspectRatios)),
      image_size: Schema.optional(Schema.Literals(chatImageSizes)),
    }),
  ),
  n: nullable(Count),
  seed: nullable(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2_147_483_647 }))),
  /** `true`: the answer is server-sent events, one chunk per choice with its images, then `[DONE]`. */
  stream: nullable(Schema.Boolean),
  stream_options: nullable(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) })),
  /**
   * Accepted and ignored: text-model knobs that do not change an image, which chat clients (LangChain and
   * others) send by default. Fields a run cannot honour (`tools`, `functions`, `audio`, `logprobs`) stay
   * unknown fields: a 400 naming them.
   */
  temperature: nullable(Schema.Number),
  top_p: nullable(Schema.Number),
  max_tokens: nullable(Schema.Number),
  max_completion_tokens: nullable(Schema.Number),
  frequency_penalty: nullable(Schema.Number),
  presence_penalty: nullable(Schema.Number),
  stop: nullable(Schema.Union([Schema.String, Schema.Array(Schema.String)])),
  logit_bias: nullable(Schema.Record(Schema.String, Schema.Number)),
  response_format: nullable(Schema.Struct({ type: Schema.Literal("text") })),
  reasoning_effort: nullable(Schema.String),
  verbosity: nullable(Schema.String),
  store: nullable(Schema.Boolean),
  service_tier: nullable(Schema.String),
  metadata: nullable(Schema.Record(Schema.String, Schema.String)),
  user: nullable(Schema.String),
  /** OpenRouter's usage accounting switch: usage (with `cost`) is always in the answer. */
  usage: nullable(Schema.Struct({ include: Schema.optional(Schema.Boolean) })),
})

const strict = { errors: "all", onExcessProperty: "error" } as const

const pathText = (prefix: string | undefined, path: ReadonlyArray<PropertyKey>): string | undefined => {
  const parts = [...(prefix === undefined ? [] : [prefix]), ...path.map(String)]
  return parts.length === 0 ? undefined : parts.join(".")
}

/** Decode `input` strictly; every issue in one message, the first issue's path as `param`. @category decoding */
export const decodeStrict =
  <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, prefix?: string) =>
  (input: unknown): Result.Result<S["Type"], Refusal> =>
    Result.mapError(Schema.decodeUnknownResult(schema)(input, strict), (error) => {
      const issues = Issues.flattenIssues(error).map((issue) => Issues.withFound(issue, input))
      const message = issues
        .map((issue) => {
          const at = pathText(prefix, issue.path)
          if (at === undefined) return issue.message
          return issue.message.startsWith("Expected no excess property")
            ? `unknown field "${at}"`
            : `${at}: ${issue.message}`
        })
        .join("; ")
      return { _tag: "Invalid", message, param: issues[0] === undefined ? prefix : pathText(prefix, issues[0].path) }
    })

const invalid = (message: string, param?: string): Refusal => ({ _tag: "Invalid", message, param })

/** What an images route was asked for: one request, how many of it, and how to answer. @category models */
export interface ImagesAsk {
  /** One image's request (without `n`). */
  readonly request: Request.ImageRequest
  readonly n: number
  readonly responseFormat: ResponseFormat
  readonly outputFormat?: typeof OutputFormat.Type | undefined
}

/** A reference image received as a multipart file. @category models */
export interface UploadedImage {
  readonly bytes: Uint8Array
  readonly contentType: string
}

type ImageFields = typeof ImagesEditFields.Type

const toImagesAsk = (
  body: ImageFields,
  hints: Partial<Request.ImageRequest>,
  images: ReadonlyArray<UploadedImage>,
): Result.Result<ImagesAsk, Refusal> => {
  const model = modelOf(body.model ?? undefined)
  if (Result.isFailure(model)) return Result.fail(model.failure)
  const mapped = Sizes.fromOpenAi({ size: body.size ?? undefined, quality: body.quality ?? undefined })
  if (mapped._tag === "Problem") return Result.fail(invalid(mapped.message, mapped.param))
  const request: Request.ImageRequest = {
    ...hints,
    prompt: body.prompt,
    ...(model.success === undefined ? {} : { model: model.success }),
    ...(mapped.mapped.aspectRatio === undefined ? {} : { aspectRatio: mapped.mapped.aspectRatio }),
    ...(mapped.mapped.size === undefined ? {} : { size: mapped.mapped.size }),
    ...(images.length === 0
      ? {}
      : {
          images: images.map((image) =>
            image.contentType.startsWith("image/")
              ? { bytes: image.bytes, mimeType: image.contentType }
              : { bytes: image.bytes },
          ),
        }),
  }
  return Result.succeed({
    request,
    n: body.n ?? 1,
    responseFormat: body.response_format ?? "b64_json",
    outputFormat: body.output_format ?? undefined,
  })
}

/**
 * A `POST /v1/images/generations` body → what to run. `hints` are the gateway's `x-peel-*` request
 * hints (`use`, `priority`), merged under the body's own fields.
 *
 * @category decoding
 */
export const imagesGeneration = (
  input: unknown,
  hints: Partial<Request.ImageRequest> = {},
): Result.Result<ImagesAsk, Refusal> => {
  const body = decodeStrict(ImagesGenerationBody)(input)
  if (Result.isFailure(body)) return Result.fail(body.failure)
  return toImagesAsk(body.success, hints, [])
}

/** One multipart part of an edit, as read off the wire. @category models */
export type FormPart =
  | { readonly _tag: "Field"; readonly key: string; readonly value: string }
  | { readonly _tag: "File"; readonly key: string; readonly contentType: string; readonly bytes: Uint8Array }

const numericFields = new Set(["n", "output_compression"])

/**
 * The parts of a `POST /v1/images/edits` form → what to run. Files under `image` or `image[]` are the
 * reference images, in order (1–14); a `mask` is refused (no channel Peel drives takes one); text fields
 * are decoded as {@link ImagesEditFields} (`n` as a number).
 *
 * @category decoding
 */
export const imagesEdit = (
  parts: ReadonlyArray<FormPart>,
  hints: Partial<Request.ImageRequest> = {},
): Result.Result<ImagesAsk, Refusal> => {
  if (parts.some((part) => part.key === "mask" || part.key === "mask[]"))
    return Result.fail(
      invalid(
        "mask is not supported: no channel Peel drives takes an edit mask (Gemini edits from the prompt and the reference images). Describe the region to change in the prompt instead.",
        "mask",
      ),
    )
  const images: Array<UploadedImage> = []
  const fields: Record<string, unknown> = {}
  for (const part of parts) {
    if (part._tag === "File") {
      if (part.key !== "image" && part.key !== "image[]")
        return Result.fail(invalid(`unexpected file field "${part.key}" (images go in "image" or "image[]")`, part.key))
      images.push({ bytes: part.bytes, contentType: part.contentType })
      continue
    }
    if (part.key === "image" || part.key === "image[]")
      return Result.fail(invalid(`"${part.key}" must be a file upload, not a text field`, "image"))
    if (Object.hasOwn(fields, part.key))
      return Result.fail(invalid(`field "${part.key}" is given more than once`, part.key))
    fields[part.key] =
      numericFields.has(part.key) && /^\d{1,9}$/.test(part.value.trim())
        ? Number(part.value.trim())
        : part.key === "stream" && part.value === "false"
          ? false
          : part.value
  }
  if (images.length === 0)
    return Result.fail(invalid("image is required: upload 1 to 14 images as image or image[]", "image"))
  if (images.length > 14) return Result.fail(invalid(`at most 14 reference images, got ${images.length}`, "image"))
  const body = decodeStrict(ImagesEditFields)(fields)
  if (Result.isFailure(body)) return Result.fail(body.failure)
  return toImagesAsk(body.success, hints, images)
}

/** What a chat route was asked for. @category models */
export interface ChatAsk {
  readonly request: Request.ImageRequest
  /** Choices to make, one image run each. */
  readonly n: number
  /** Answer as server-sent events (`stream: true`). */
  readonly stream: boolean
}

const chatSize = (size: (typeof chatImageSizes)[number]): Catalog.Size => (size === "0.5K" ? "512" : size)

/**
 * A `POST /v1/chat/completions` body → what to run.
 *
 * @category decoding
 */
export const chatCompletion = (
  input: unknown,
  hints: Partial<Request.ImageRequest> = {},
): Result.Result<ChatAsk, Refusal> => {
  const decoded = decodeStrict(ChatCompletionBody)(input)
  if (Result.isFailure(decoded)) return Result.fail(decoded.failure)
  const body = decoded.success
  const modalities = body.modalities ?? ["image", "text"]
  if (!modalities.includes("image"))
    return Result.fail(
      invalid(
        'this gateway makes images: modalities must include "image" (["image","text"] or ["image"])',
        "modalities",
      ),
    )
  const model = modelOf(body.model)
  if (Result.isFailure(model)) return Result.fail(model.failure)
  const texts: Array<string> = []
  const images: Array<Request.ImageInput> = []
  const messages: Array<Message> = []
  for (const [index, input] of body.messages.entries()) {
    const message = decodeMessage(input, index)
    if (Result.isFailure(message)) return Result.fail(message.failure)
    messages.push(message.success)
  }
  for (const message of messages) {
    if (message.role === "assistant") continue
    if (typeof message.content === "string") {
      texts.push(message.content)
      continue
    }
    for (const part of message.content) {
      if (part.type === "text") texts.push(part.text)
      else images.push(part.image_url.url)
    }
  }
  const prompt = texts.filter((text) => text.trim().length > 0).join("\n\n")
  if (prompt.length === 0)
    return Result.fail(
      invalid("messages hold no text: a system or user message must say what image to make", "messages"),
    )
  if (images.length > 14) return Result.fail(invalid(`at most 14 reference images, got ${images.length}`, "messages"))
  const config = body.image_config ?? undefined
  const request: Request.ImageRequest = {
    ...hints,
    prompt,
    ...(model.success === undefined ? {} : { model: model.success }),
    ...(config?.aspect_ratio === undefined ? {} : { aspectRatio: config.aspect_ratio }),
    ...(config?.image_size === undefined ? {} : { size: chatSize(config.image_size) }),
    ...(body.seed === undefined || body.seed === null ? {} : { seed: body.seed }),
    ...(modalities.includes("text") ? {} : { imageOnly: true }),
    ...(images.length === 0 ? {} : { images }),
  }
  return Result.succeed({ request, n: body.n ?? 1, stream: body.stream === true })
}
