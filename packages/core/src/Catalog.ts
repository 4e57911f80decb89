/**
 * The model catalog, as data: families, per-channel model ids, aliases, retirement dates, expected
 * output tokens per size, pixel dimensions per size and aspect ratio, and token prices with the date
 * each was verified. Nothing here is code that decides anything; {@link Pricing} and the stages read it.
 *
 * Sources: `shared/reference/wire-formats.md` §1 (official size/token tables) and
 * `shared/reference/pricing.md` (prices verified 2026-02-07, statuses as of 2026-11).
 *
 * @since 0.1.0
 */

/** @category models */
export const Sizes = ["1K", "2K", "4K"] as const
/** @category models */
export type Size = (typeof Sizes)[number]

/** @category models */
export const AspectRatios = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"] as const
/** @category models */
export type AspectRatio = (typeof AspectRatios)[number]

/** Pixel dimensions as `[width, height]`. @category models */
export type Dimensions = readonly [width: number, height: number]

/** Per million tokens, in USD. @category pricing */
export interface TokenPrices {
  readonly textInputPerMillion: number
  readonly textOutputPerMillion: number
  readonly imageOutputPerMillion: number
  /** Tokens an input (reference) image counts for. */
  readonly inputImageTokens: number
  /** ISO date the figures were last checked against the vendor's page. */
  readonly verified: string
}

/** @category models */
export interface ModelInfo {
  readonly id: string
  /** Marketing family, shared by aliases of one model. */
  readonly family: string
  readonly status: "active" | "retired"
  /** ISO date Google shut the id down (`retired`) or, for an active id, the earliest announced shutdown. */
  readonly shutdown?: string
  /** The id that replaces a retired one. */
  readonly successor?: string
  /** Whether `imageConfig.imageSize` may be sent (Gemini 3 image models only). */
  readonly acceptsImageSize: boolean
  /** Sizes the model really makes; a plan asking for another is clamped (with the reason recorded). */
  readonly sizes: ReadonlyArray<Size>
  /** Expected image output tokens per requested size. */
  readonly outputTokens: Readonly<Record<Size, number>>
  /** Output pixel size per requested size and aspect ratio. */
  readonly dimensions: Readonly<Record<Size, Readonly<Record<AspectRatio, Dimensions>>>>
  /** Google's standard (real-time) token prices. The Batch API charges {@link batchDiscount} of them. */
  readonly prices: TokenPrices
}

const proDimensions1K: Record<AspectRatio, Dimensions> = {
  "1:1": [1024, 1024],
  "2:3": [848, 1264],
  "3:2": [1264, 848],
  "3:4": [896, 1200],
  "4:3": [1200, 896],
  "4:5": [928, 1152],
  "5:4": [1152, 928],
  "9:16": [768, 1376],
  "16:9": [1376, 768],
  "21:9": [1584, 672],
}

const scaled = (table: Record<AspectRatio, Dimensions>, factor: number): Record<AspectRatio, Dimensions> =>
  Object.fromEntries(
    Object.entries(table).map(([ratio, [width, height]]) => [ratio, [width * factor, height * factor]]),
  ) as unknown as Record<AspectRatio, Dimensions>

const proDimensions = { "1K": proDimensions1K, "2K": scaled(proDimensions1K, 2), "4K": scaled(proDimensions1K, 4) }

const flashDimensions1K: Record<AspectRatio, Dimensions> = {
  "1:1": [1024, 1024],
  "2:3": [832, 1248],
  "3:2": [1248, 832],
  "3:4": [864, 1184],
  "4:3": [1184, 864],
  "4:5": [896, 1152],
  "5:4": [1152, 896],
  "9:16": [768, 1344],
  "16:9": [1344, 768],
  "21:9": [1536, 672],
}

const proPrices: TokenPrices = {
  textInputPerMillion: 2,
  textOutputPerMillion: 12,
  imageOutputPerMillion: 120,
  inputImageTokens: 560,
  verified: "2026-02-07",
}

const flashPrices: TokenPrices = {
  textInputPerMillion: 0.3,
  textOutputPerMillion: 2.5,
  imageOutputPerMillion: 30,
  inputImageTokens: 258,
  verified: "2026-02-07",
}

const pro = {
  family: "nano-banana-pro",
  acceptsImageSize: true,
  sizes: ["1K", "2K", "4K"],
  outputTokens: { "1K": 1120, "2K": 1120, "4K": 2000 },
  dimensions: proDimensions,
  prices: proPrices,
} as const

/**
 * Every model Peel knows. Keys are Google's ids; aliases of one model share a family.
 *
 * @category models
 */
export const models: Readonly<Record<string, ModelInfo>> = {
  "gemini-3-pro-image": {
    ...pro,
    id: "gemini-3-pro-image",
    status: "active",
  },
  "gemini-3-pro-image-preview": {
    ...pro,
    id: "gemini-3-pro-image-preview",
    status: "retired",
    shutdown: "2026-06-25",
    successor: "gemini-3-pro-image",
  },
  "gemini-2.5-flash-image": {
    id: "gemini-2.5-flash-image",
    family: "nano-banana",
    status: "active",
    shutdown: "2026-10-02",
    acceptsImageSize: false,
    sizes: ["1K"],
    outputTokens: { "1K": 1290, "2K": 1290, "4K": 1290 },
    dimensions: { "1K": flashDimensions1K, "2K": flashDimensions1K, "4K": flashDimensions1K },
    prices: flashPrices,
  },
}

/**
 * Friendly names a pipeline or request may use instead of Google's id.
 *
 * @category models
 */
export const aliases: Readonly<Record<string, string>> = {
  "nano-banana-pro": "gemini-3-pro-image",
  "nano-banana": "gemini-2.5-flash-image",
  "gemini-3-pro": "gemini-3-pro-image",
  "flash-image": "gemini-2.5-flash-image",
}

/** Google's id for an alias; any other name unchanged. @category models */
export const resolveModel = (name: string): string => (Object.hasOwn(aliases, name) ? aliases[name]! : name)

/** Share of the standard price charged by Google's Batch API. @category pricing */
export const batchDiscount = 0.5

/** The catalog entry for a model id, if Peel knows it. @category models */
export const findModel = (id: string): ModelInfo | undefined => {
  const resolved = resolveModel(id)
  return Object.hasOwn(models, resolved) ? models[resolved] : undefined
}

/**
 * Output pixel size for a model, size and aspect ratio; `undefined` for an unknown model.
 *
 * @category models
 */
export const dimensionsOf = (model: string, size: Size, aspectRatio: AspectRatio): Dimensions | undefined =>
  findModel(model)?.dimensions[size][aspectRatio]

/**
 * A warning for a retired (shut down) model id, naming its successor; `undefined` when the id is current
 * or unknown. `today` is an ISO date.
 *
 * @category models
 */
export const retirementWarning = (id: string, today: string): string | undefined => {
  const model = findModel(id)
  if (model === undefined || model.status !== "retired" || (model.shutdown ?? "") > today) return undefined
  const successor = model.successor === undefined ? "" : `; use ${model.successor}`
  return `model ${id} was shut down at Google on ${model.shutdown}${successor}`
}
