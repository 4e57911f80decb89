/**
 * The request a user makes ({@link ImageRequest}) and the result Peel returns ({@link ImageResult}).
 * Both are Schemas because they cross boundaries: JSONL input files, `--json` output, the Promise facade.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import { Adjustment, Attempt, Usage } from "./Attempt.ts"
import { AspectRatios, Sizes } from "./Catalog.ts"
import { flattenIssues, withFound } from "./internal/issues.ts"

/** @category schemas */
export const Size = Schema.Literals(Sizes)
/** @category schemas */
export const AspectRatio = Schema.Literals(AspectRatios)
/** @category schemas */
export const Priority = Schema.Literals(["high", "normal", "low"])
/** @category schemas */
export const Urgency = Schema.Literals(["realtime", "batch"])

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
})
/** @category models */
export type ImageRequest = typeof ImageRequest.Type

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

/** Decode an untrusted request strictly (unknown keys are errors), every problem in one message. @category decoding */
export const decodeRequest = (input: unknown): Result.Result<ImageRequest, string> =>
  Result.mapError(Schema.decodeUnknownResult(ImageRequest)(input, strictOptions), (error) => formatIssues(error, input))
