/**
 * The one table from OpenAI's image `size` and `quality` to Peel's aspect ratio and size tier (1K/2K/4K).
 * OpenAI names an image by its pixel size; Gemini image models by a ratio and a tier. Everything the
 * OpenAI-shaped routes do with `size` and `quality` goes through {@link fromOpenAi}, and the README's
 * "Gateway" section prints {@link sizeTable} and {@link qualityTable} (a test checks the two agree).
 *
 * - `size` picks the **aspect ratio** only: `1024x1024` → 1:1, `1536x1024` → 3:2, `1024x1536` → 2:3,
 *   DALL·E 3's `1792x1024` → 16:9 and `1024x1792` → 9:16, `256x256` / `512x512` → 1:1. Any other
 *   `WIDTHxHEIGHT` whose ratio is within 3% of one Peel makes (the 14 of `Catalog.AspectRatios`: `2100x900`
 *   → 21:9, `4096x1024` → 4:1, Gemini's own `5504x3072` → 16:9) gets that ratio; anything else is refused
 *   with the ratios Peel makes (never silently squared). `auto` (or no `size`) leaves the ratio to the
 *   pipeline (Gemini's default is 1:1).
 * - `quality` picks the **tier**: `low` → 1K, `medium` → 2K, `high` → 4K; DALL·E 3's `standard` → 1K and
 *   `hd` → 4K. `auto` (or no `quality`) leaves the tier to the pipeline's `resolution` stage (2K unless the
 *   pipeline says otherwise), so a client that never says `quality` gets Peel's cost-aware default.
 *
 * The pixel size of the answer is the model's own for that ratio and tier (`Catalog.dimensionsOf`):
 * `1536x1024` + `high` on Gemini 3 Pro Image is a 5056×3392 3:2 image, not 1536×1024. A model that does
 * not make the tier (Gemini 2.5 Flash Image makes 1K only) is clamped by the plan, which records why.
 *
 * @since 0.5.0
 */
import { Catalog } from "@peel/contract"

/** What a `size` + `quality` pair means for Peel: `undefined` fields are left to the pipeline. @category models */
export interface Mapped {
  readonly aspectRatio?: Catalog.AspectRatio | undefined
  readonly size?: Catalog.Size | undefined
}

/** OpenAI's named sizes and the ratio each means. @category tables */
export const sizeTable: ReadonlyArray<
  readonly [openAi: string, aspectRatio: Catalog.AspectRatio | "pipeline default"]
> = [
  ["auto", "pipeline default"],
  ["1024x1024", "1:1"],
  ["1536x1024", "3:2"],
  ["1024x1536", "2:3"],
  ["1792x1024", "16:9"],
  ["1024x1792", "9:16"],
  ["512x512", "1:1"],
  ["256x256", "1:1"],
]

/** OpenAI's `quality` values and the tier each means. @category tables */
export const qualityTable: ReadonlyArray<readonly [openAi: string, size: Catalog.Size | "pipeline default"]> = [
  ["auto", "pipeline default"],
  ["low", "1K"],
  ["medium", "2K"],
  ["high", "4K"],
  ["standard", "1K"],
  ["hd", "4K"],
]

/** The `quality` values accepted. @category tables */
export const qualities = qualityTable.map(([quality]) => quality)

/** How far (relative) a free-form `WxH` may be from a ratio Peel makes: Gemini's own sizes are within 2.7% (3.1 Flash's 512 tier). */
const tolerance = 0.03

const ratioValue = (ratio: Catalog.AspectRatio): number => {
  const [width, height] = ratio.split(":").map(Number)
  return width! / height!
}

const sizePattern = /^(\d{1,5})x(\d{1,5})$/

/**
 * The ratio a pixel size means: a named OpenAI size from {@link sizeTable}, else the nearest of
 * `Catalog.AspectRatios` within 3%. A string naming the problem when there is none.
 *
 * @category mapping
 */
export const aspectRatioOf = (size: string): Catalog.AspectRatio | undefined | { readonly problem: string } => {
  const named = sizeTable.find(([openAi]) => openAi === size)
  if (named !== undefined) return named[1] === "pipeline default" ? undefined : named[1]
  const match = sizePattern.exec(size)
  if (match === null)
    return { problem: `size must be "auto" or WIDTHxHEIGHT (like 1536x1024), got ${JSON.stringify(size)}` }
  const width = Number(match[1])
  const height = Number(match[2])
  if (width === 0 || height === 0) return { problem: `size ${size} has a zero side` }
  const wanted = width / height
  const nearest = Catalog.AspectRatios.map((ratio) => ({
    ratio,
    distance: Math.abs(ratioValue(ratio) - wanted) / ratioValue(ratio),
  })).reduce((best, next) => (next.distance < best.distance ? next : best))
  if (nearest.distance <= tolerance) return nearest.ratio
  return {
    problem: `size ${size} is not one of the aspect ratios Peel makes (${Catalog.AspectRatios.join(", ")}); use a WIDTHxHEIGHT within 3% of one`,
  }
}

/** The tier a `quality` means (`undefined`: the pipeline decides). @category mapping */
export const sizeOf = (quality: string): Catalog.Size | undefined | { readonly problem: string } => {
  const named = qualityTable.find(([openAi]) => openAi === quality)
  if (named === undefined)
    return { problem: `quality must be one of ${qualities.join(", ")}, got ${JSON.stringify(quality)}` }
  return named[1] === "pipeline default" ? undefined : named[1]
}

const isProblem = (value: unknown): value is { readonly problem: string } =>
  typeof value === "object" && value !== null && "problem" in value

/**
 * `size` and `quality` (either may be absent) → ratio and tier, or every problem found, with the field
 * that has it.
 *
 * @category mapping
 */
export const fromOpenAi = (input: {
  readonly size?: string | undefined
  readonly quality?: string | undefined
}):
  | { readonly _tag: "Mapped"; readonly mapped: Mapped }
  | { readonly _tag: "Problem"; readonly param: string; readonly message: string } => {
  const aspectRatio = input.size === undefined ? undefined : aspectRatioOf(input.size)
  if (isProblem(aspectRatio)) return { _tag: "Problem", param: "size", message: aspectRatio.problem }
  const size = input.quality === undefined ? undefined : sizeOf(input.quality)
  if (isProblem(size)) return { _tag: "Problem", param: "quality", message: size.problem }
  return { _tag: "Mapped", mapped: { aspectRatio, size } }
}

/**
 * The `size` string an answer reports: the image's real pixel size (`5056x3392`), since that is what the
 * caller got.
 *
 * @category mapping
 */
export const describe = (width: number, height: number): string => `${width}x${height}`
