/**
 * The request a user makes ({@link ImageRequest}) and the result Peel returns ({@link ImageResult}).
 * Both are Schemas because they cross boundaries: JSONL input files, `--json` output, the Promise facade.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import { Adjustment, Attempt, Usage } from "./Attempt.ts"
import { AspectRatios, Sizes } from "./Catalog.ts"
import { flattenIssues, withFound } from "./Issues.ts"

/** @category schemas */
export const Size = Schema.Literals(Sizes)
/** @category schemas */
export const AspectRatio = Schema.Literals(AspectRatios)
/** @category schemas */
export const Priority = Schema.Literals(["high", "normal", "low"])
/** @category schemas */
export const Urgency = Schema.Literals(["realtime", "batch"])

/**
 * A reference image: a string (a file path, an `http(s)://` URL or a `data:image/...;base64,` URI), or
 * `{ path }`, `{ url }`, `{ data, mimeType }` (base64) or, from the API, `{ bytes }`. Loaded and checked
 * while planning (count, size, type by content sniffing), before any call.
 *
 * @category schemas
 */
export const ImageInput = Schema.Union([
  Schema.String.check(Schema.isMinLength(1)),
  Schema.Struct({ path: Schema.String.check(Schema.isMinLength(1)) }),
  Schema.Struct({ url: Schema.String.check(Schema.isPattern(/^https?:\/\//, { message: "url must be http(s)://" })) }),
  Schema.Struct({ data: Schema.String, mimeType: Schema.String }),
  Schema.Struct({ bytes: Schema.Uint8Array, mimeType: Schema.optional(Schema.String) }),
])
/** @category models */
export type ImageInput = typeof ImageInput.Type

/**
 * One image to make. Explicit `model`, `size` and `aspectRatio` win over routing.
 *
 * @category schemas
 */
export const ImageRequest = Schema.Struct({
  prompt: Schema.String.check(
    Schema.makeFilter((prompt: string) => prompt.trim().length > 0 || "prompt must not be empty or only whitespace"),
  ),
  id: Schema.optional(
    Schema.String.check(
      Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
        message: "id must be 1-128 characters of letters, digits, '.', '_' or '-' (it names the output file)",
      }),
    ),
  ),
  use: Schema.optional(Schema.String),
  priority: Schema.optional(Priority),
  urgency: Schema.optional(Urgency),
  model: Schema.optional(Schema.String),
  size: Schema.optional(Size),
  aspectRatio: Schema.optional(AspectRatio),
  metadata: Schema.optional(Schema.Record(Schema.String, Schema.Unknown)),
  /** Reference images (editing, style transfer, character consistency): at most 14. */
  images: Schema.optional(Schema.Array(ImageInput)),
  /** How many images: run as `n` requests with ids `ID-1` … `ID-n` (seeds `seed` … `seed+n-1`). */
  n: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10 }))),
  /** Which of `n` images this is (set when a request for n images is split): each is its own image and cache entry. */
  variant: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 10 }))),
  /** Seed, where the upstream takes one (Gemini `generationConfig.seed`, OpenAI-style `seed`). */
  seed: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2_147_483_647 }))),
  /** Ask for the image alone, no text (Gemini `responseModalities: ["IMAGE"]`, OpenAI-style `modalities: ["image"]`). */
  imageOnly: Schema.optional(Schema.Boolean),
  /**
   * Options for one channel, keyed by channel name or plugin name (`google-ai-studio: { safetySettings }`),
   * checked by that channel's own Schema before any call.
   */
  providerOptions: Schema.optional(Schema.Record(Schema.String, Schema.Record(Schema.String, Schema.Unknown))),
})
/** @category models */
export type ImageRequest = typeof ImageRequest.Type

/**
 * A request for `n` images as `n` requests of one image: ids `ID-1` … `ID-n` (ID the request's id), seeds
 * `seed` … `seed+n-1` when a seed is given. A request without `n` (or `n: 1`) is returned as it is.
 *
 * @category utils
 */
export const expand = (request: ImageRequest, id: string): ReadonlyArray<ImageRequest> => {
  if (request.n === undefined || request.n <= 1) return [request]
  const { n, ...one } = request
  return Array.from({ length: n }, (_, index) => ({
    ...one,
    id: `${id}-${index + 1}`,
    variant: index + 1,
    ...(one.seed === undefined ? {} : { seed: one.seed + index }),
  }))
}

export { Adjustment, Attempt, Usage } from "./Attempt.ts"

/**
 * The outcome of one request, without the image bytes (those are in {@link GeneratedImage}).
 * This is what `peel run --json` prints, one per line.
 *
 * @category schemas
 */
export const ImageResultJson = Schema.Struct({
  id: Schema.String,
  ok: Schema.Literal(true),
  file: Schema.optional(Schema.String),
  mimeType: Schema.String,
  width: Schema.Number,
  height: Schema.Number,
  model: Schema.String,
  channel: Schema.String,
  size: Size,
  aspectRatio: AspectRatio,
  cached: Schema.Boolean,
  placeholder: Schema.Boolean,
  /** What the whole request cost: every attempt, billed failures included. */
  costUsd: Schema.Number,
  usage: Schema.optional(Usage),
  /** The whole request, from planning to the image on disk. */
  latencyMs: Schema.Number,
  attempts: Schema.Array(Attempt),
  /** What the plan changed from what was asked, and why. */
  adjustments: Schema.optional(Schema.Array(Adjustment)),
  /** Text the model returned beside the image. */
  text: Schema.optional(Schema.String),
  promptHash: Schema.String,
})

/** @category models */
export interface ImageResult extends Omit<typeof ImageResultJson.Type, "ok"> {
  readonly bytes: Uint8Array
}

/** @category models */
export type ImageResultJson = typeof ImageResultJson.Type

/** Drop the bytes: the shape printed by `--json` and returned in reports. @category utils */
export const toJson = (result: ImageResult): ImageResultJson => {
  const { bytes: _bytes, ...rest } = result
  return { ok: true, ...rest }
}

const formatIssues = (error: Schema.SchemaError, input: unknown): string =>
  flattenIssues(error)
    .map((found) => withFound(found, input))
    .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`))
    .join("; ")

const strictOptions = { errors: "all", onExcessProperty: "error" } as const
const parseJson = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))

/** Decode one JSONL line (JSON text) into a request, strictly; every problem in one message. @category decoding */
export const decodeRequestLine = (line: string): Result.Result<ImageRequest, string> => {
  const parsed = parseJson(line)
  if (Result.isFailure(parsed)) return Result.fail("not valid JSON (expected one ImageRequest object per line)")
  return decodeRequest(parsed.success)
}

const decodeImageRequest = Schema.decodeUnknownResult(ImageRequest)

const idPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
const sizes: ReadonlySet<unknown> = new Set(Sizes)
const aspectRatios: ReadonlySet<unknown> = new Set(AspectRatios)
const priorities: ReadonlySet<unknown> = new Set(Priority.literals)
const urgencies: ReadonlySet<unknown> = new Set(Urgency.literals)
const isIntBetween = (value: unknown, minimum: number, maximum: number): boolean =>
  Number.isSafeInteger(value) && (value as number) >= minimum && (value as number) <= maximum

/**
 * The fields {@link plainRequest} checks, in the Schema's order, each with the Schema's rule for it
 * (`metadata`, `images` and `providerOptions` are left to the Schema).
 */
const plainFields: ReadonlyArray<readonly [string, (value: unknown) => boolean]> = [
  ["prompt", (value) => typeof value === "string" && value.trim().length > 0],
  ["id", (value) => typeof value === "string" && idPattern.test(value)],
  ["use", (value) => typeof value === "string"],
  ["priority", (value) => priorities.has(value)],
  ["urgency", (value) => urgencies.has(value)],
  ["model", (value) => typeof value === "string"],
  ["size", (value) => sizes.has(value)],
  ["aspectRatio", (value) => aspectRatios.has(value)],
  ["n", (value) => isIntBetween(value, 1, 10)],
  ["variant", (value) => isIntBetween(value, 1, 10)],
  ["seed", (value) => isIntBetween(value, 0, 2_147_483_647)],
  ["imageOnly", (value) => typeof value === "boolean"],
]
const plainKeys: ReadonlySet<string> = new Set(plainFields.map(([key]) => key))

/**
 * The common request — a plain object of plain fields, each valid — decoded without the Schema's
 * machinery (it runs for every `generate`): the same object the Schema makes (fields in its order), or
 * `undefined` for anything else, which the Schema then decodes (and explains). Checked against the Schema
 * on generated inputs in test/request-decode.test.ts.
 */
const plainRequest = (input: unknown): ImageRequest | undefined => {
  if (typeof input !== "object" || input === null) return undefined
  const prototype = Object.getPrototypeOf(input)
  if (prototype !== Object.prototype && prototype !== null) return undefined
  const keys = Object.keys(input)
  if (Object.getOwnPropertyNames(input).length !== keys.length || Object.getOwnPropertySymbols(input).length > 0)
    return undefined
  for (const key of keys) if (!plainKeys.has(key)) return undefined
  const record = input as Record<string, unknown>
  const output: Record<string, unknown> = {}
  for (const [key, valid] of plainFields) {
    if (!Object.hasOwn(record, key)) continue
    const value = record[key]
    if (!valid(value)) return undefined
    output[key] = value
  }
  return Object.hasOwn(output, "prompt") ? (output as unknown as ImageRequest) : undefined
}

/** Decode an untrusted request strictly (unknown keys are errors), every problem in one message. @category decoding */
export const decodeRequest = (input: unknown): Result.Result<ImageRequest, string> => {
  const plain = plainRequest(input)
  if (plain !== undefined) return Result.succeed(plain)
  const decoded = decodeImageRequest(input, strictOptions)
  return Result.isSuccess(decoded) ? Result.succeed(decoded.success) : Result.fail(formatIssues(decoded.failure, input))
}
