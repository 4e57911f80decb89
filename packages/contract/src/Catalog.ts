/**
 * The model catalog, as data: families, per-channel model ids, aliases, retirement dates, expected
 * output tokens per size, pixel dimensions per size and aspect ratio, and token prices with the date
 * each was verified. Nothing here is code that decides anything; {@link Pricing} and the stages read it.
 *
 * Sources: `shared/reference/wire-formats.md` §1 (official size/token tables) and
 * `shared/reference/pricing.md` (prices verified 2026-02-07, statuses as of 2026-11; Nano Banana 2 —
 * `gemini-3.1-flash-image` — recorded 2026-11-26 from pricing.md's Vertex token table and third-party price
 * tables).
 *
 * @since 0.1.0
 */

/**
 * Every size any model makes, smallest first ({@link Plan.settle} ranks sizes by index). `"512"` is made
 * only by models that list it in {@link ModelInfo.sizes}.
 *
 * @category models
 */
export const Sizes = ["512", "1K", "2K", "4K"] as const
/** @category models */
export type Size = (typeof Sizes)[number]

/** @category models */
export const AspectRatios = [
  "1:1",
  "2:3",
  "3:2",
  "3:4",
  "4:3",
  "4:5",
  "5:4",
  "9:16",
  "16:9",
  "21:9",
  "1:4",
  "4:1",
  "1:8",
  "8:1",
] as const
/** @category models */
export type AspectRatio = (typeof AspectRatios)[number]

/** The ten ratios every Gemini image model makes (wire-formats.md §1). @category models */
export const commonAspectRatios: ReadonlyArray<AspectRatio> = AspectRatios.slice(0, 10)

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
  /**
   * `active`; `deprecated` — still served but past its announced earliest shutdown (a warning, not a
   * remap); `retired` — shut down, mapped to its {@link successor}.
   */
  readonly status: "active" | "deprecated" | "retired"
  /** ISO date Google shut the id down (`retired`) or, otherwise, the earliest announced shutdown. */
  readonly shutdown?: string
  /** The id that replaces a retired one. */
  readonly successor?: string
  /** Whether `imageConfig.imageSize` may be sent (Gemini 3 image models only). */
  readonly acceptsImageSize: boolean
  /** Sizes the model really makes; a plan asking for another is clamped (with the reason recorded). */
  readonly sizes: ReadonlyArray<Size>
  /**
   * Aspect ratios the model makes; a plan asking for another is refused before any call
   * (`Channel.supportCheck`), since no ratio is "near enough" to clamp to silently.
   */
  readonly aspectRatios: ReadonlyArray<AspectRatio>
  /** Expected image output tokens per requested size (sizes the model does not make may be absent). */
  readonly outputTokens: Readonly<Partial<Record<Size, number>>>
  /** Output pixel size per requested size and aspect ratio (every listed size × listed ratio is present). */
  readonly dimensions: Readonly<Partial<Record<Size, Readonly<Partial<Record<AspectRatio, Dimensions>>>>>>
  /** Google's standard (real-time) token prices. The Batch API charges {@link batchDiscount} of them. */
  readonly prices: TokenPrices
}

const proDimensions1K: RatioTable = {
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

type RatioTable = Readonly<Partial<Record<AspectRatio, Dimensions>>>

const scaled = (table: RatioTable, factor: number): RatioTable =>
  Object.fromEntries(
    Object.entries(table).map(([ratio, dimensions]) => [ratio, [dimensions![0] * factor, dimensions![1] * factor]]),
  ) as RatioTable

const proDimensions = { "1K": proDimensions1K, "2K": scaled(proDimensions1K, 2), "4K": scaled(proDimensions1K, 4) }

const flashDimensions1K: RatioTable = {
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

/**
 * Nano Banana 2 (`gemini-3.1-flash-image`) pixel sizes. Google's table is not in `shared/reference`, so
 * these are DERIVED: the 2.5 Flash 1K table (wire-formats.md §1) for the ten common ratios, plus ~1 MP
 * entries for the extra ratios (1:4 → 512x2048, 1:8 → 384x3072 and their transposes); 512 halves the 1K
 * table, 2K doubles it, 4K quadruples it. Replace with Google's figures when checked.
 */
const flash31Dimensions1K: RatioTable = {
  ...flashDimensions1K,
  "1:4": [512, 2048],
  "4:1": [2048, 512],
  "1:8": [384, 3072],
  "8:1": [3072, 384],
}

const flash31Dimensions = {
  "512": scaled(flash31Dimensions1K, 0.5),
  "1K": flash31Dimensions1K,
  "2K": scaled(flash31Dimensions1K, 2),
  "4K": scaled(flash31Dimensions1K, 4),
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

/**
 * Nano Banana 2 prices: $60 per 1M image output tokens (third-party price tables, pricing.md: "verify on
 * Google's pricing page"); text prices and input image tokens are not in our references, so the 2.5 Flash
 * figures stand in (input image tokens: 258; text $0.30 / $2.50 per 1M) until checked.
 */
const flash31Prices: TokenPrices = {
  textInputPerMillion: 0.3,
  textOutputPerMillion: 2.5,
  imageOutputPerMillion: 60,
  inputImageTokens: 258,
  verified: "2026-11-26",
}

const flash31 = {
  family: "nano-banana-2",
  acceptsImageSize: true,
  sizes: ["512", "1K", "2K", "4K"],
  aspectRatios: AspectRatios,
  // Google's Vertex model page (pricing.md): ≈ $0.045 / $0.067 / $0.101 / $0.151 at $60 per 1M.
  outputTokens: { "512": 747, "1K": 1120, "2K": 1680, "4K": 2520 },
  dimensions: flash31Dimensions,
  prices: flash31Prices,
} as const

const pro = {
  family: "nano-banana-pro",
  acceptsImageSize: true,
  sizes: ["1K", "2K", "4K"],
  aspectRatios: commonAspectRatios,
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
  "gemini-3.1-flash-image": {
    ...flash31,
    id: "gemini-3.1-flash-image",
    status: "active",
  },
  "gemini-3.1-flash-image-preview": {
    ...flash31,
    id: "gemini-3.1-flash-image-preview",
    status: "retired",
    shutdown: "2026-06-25",
    successor: "gemini-3.1-flash-image",
  },
  "gemini-2.5-flash-image": {
    id: "gemini-2.5-flash-image",
    family: "nano-banana",
    // Past its announced earliest shutdown (2026-10-02) but not announced as shut down: warn, do not remap.
    status: "deprecated",
    shutdown: "2026-10-02",
    successor: "gemini-3.1-flash-image",
    acceptsImageSize: false,
    sizes: ["1K"],
    aspectRatios: commonAspectRatios,
    // Flash 2.5 ignores imageSize: whatever size a channel sends, it makes its ~1024 px image.
    outputTokens: { "512": 1290, "1K": 1290, "2K": 1290, "4K": 1290 },
    dimensions: { "512": flashDimensions1K, "1K": flashDimensions1K, "2K": flashDimensions1K, "4K": flashDimensions1K },
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
  "nano-banana-2": "gemini-3.1-flash-image",
  "gemini-3.1-flash": "gemini-3.1-flash-image",
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
  findModel(model)?.dimensions[size]?.[aspectRatio]

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

/**
 * A warning for a deprecated model id (still served, past its announced earliest shutdown), naming the
 * model to prefer; `undefined` otherwise. Unlike a retired id, a deprecated one is not remapped.
 *
 * @category models
 */
export const deprecationWarning = (id: string, today: string): string | undefined => {
  const model = findModel(id)
  if (model === undefined || model.status !== "deprecated" || (model.shutdown ?? "") > today) return undefined
  const successor = model.successor === undefined ? "" : `; prefer ${model.successor}`
  return `model ${id} is past its announced earliest shutdown (${model.shutdown}) and may stop at any time${successor}`
}

/** The retirement or deprecation warning for a model id, if any. @category models */
export const statusWarning = (id: string, today: string): string | undefined =>
  retirementWarning(id, today) ?? deprecationWarning(id, today)
