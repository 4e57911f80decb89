/**
 * What a pipeline would cost, before anything is spent: each request is planned exactly as a run would
 * plan it (`runner.plan`, no calls) and priced at its first candidate's expected price — what it costs
 * when the first channel answers. Set beside it: the same work at **Google's standard price** (the Pro
 * model unless the request names another, at the size the pipeline chose, real time, no cache).
 *
 * - **Cache.** A workload's repeats (`repeats: { share, within }`) are free when the pipeline has a
 *   `cache` whose TTL covers `within`; in a request file, a request whose cache key appeared earlier is
 *   free when the pipeline has a cache.
 * - **Batch.** `urgency: batch` requests a batch channel takes are priced at its (batch) price. When the
 *   pipeline has no batch channel they are planned, and priced, in real time; `batch.wouldSaveUsd` says
 *   what Google's Batch API (half of Google's price) would take off the ones it would make cheaper.
 *
 * @since 0.3.0
 */

import { batchDiscount, findModel, type Size, Sizes } from "@peel/contract/Catalog"
import type { Channel } from "@peel/contract/Channel"
import { expectedCost } from "@peel/contract/Pricing"
import type { ImageRequest, ImageResult } from "@peel/contract/Request"
import { Effect } from "effect"
import * as Cache from "../cache/Cache.ts"
import type { Pipeline } from "../config/Pipeline.ts"
import type { Workload } from "../config/Workload.ts"
import { defaults, type Plan } from "../plan/Plan.ts"
import type { RunnerShape } from "../runner/Runner.ts"
import * as Money from "../spend/Money.ts"
import { ttlOf } from "../stages/cache.ts"

/** The brief's own baseline: 10,000 Pro images a month at $0.134. @category baseline */
export const brief = { imagesPerMonth: 10_000, usdPerImage: 0.134, usd: 1_340 } as const

/** Images and dollars of one slice of the work. @category model */
export interface Slice {
  images: number
  /** Images the cache answers. */
  cached: number
  usd: number
  /** The same images at Google's standard price. */
  baselineUsd: number
}

/** An estimate. @category model */
export interface Report {
  readonly pipeline: string
  /** `month` for a workload (figures per month), `input` for a request file (figures for the file). */
  readonly per: "month" | "input"
  readonly images: number
  /** Upstream calls expected (images minus cache hits). */
  readonly calls: number
  readonly totalUsd: number
  readonly baselineUsd: number
  readonly savedUsd: number
  /** The brief's 10,000 × $0.134 (workloads only). */
  readonly briefBaselineUsd?: number
  readonly cache: {
    readonly enabled: boolean
    readonly ttlMillis?: number
    readonly images: number
    readonly savedUsd: number
  }
  readonly batch: {
    /** Images asked for with `urgency: batch`. */
    readonly requested: number
    /** Of those, the images a batch channel takes. */
    readonly inBatch: number
    /** What Google's Batch API would take off the rest (0 when they already cost less in real time). */
    readonly wouldSaveUsd: number
  }
  readonly byChannel: Readonly<Record<string, Slice>>
  readonly byModel: Readonly<Record<string, Slice>>
  readonly bySize: Readonly<Record<string, Slice>>
  readonly byUrgency: Readonly<Record<string, Slice>>
  /**
   * When `generate` hedges: its budget (the share of calls that may be hedges) and what hedges could add at
   * most (each hedge is a second paid call). The total above assumes none.
   */
  readonly hedging?: { readonly budget: number; readonly upToUsd: number }
  /** Images no channel of the pipeline can serve (priced at $0 here; they would fail). */
  readonly unservable: number
  readonly invalid: ReadonlyArray<{ readonly id: string; readonly message: string }>
}

const round = (usd: number): number => Math.round(usd * 1e6) / 1e6

/** What the plan costs when its first candidate answers; `undefined` when no channel can serve it. @category pricing */
export const expectedPrice = (plan: Plan, channels: ReadonlyMap<string, Channel>): number | undefined => {
  const first = plan.candidates[0]
  const channel = first === undefined ? undefined : channels.get(first)
  return channel === undefined ? undefined : channel.price(plan.channelRequest)
}

/**
 * The same request at Google's standard price: the model the request named (else Pro), at the size the
 * pipeline asked for before clamping to a smaller model, in real time.
 *
 * @category pricing
 */
export const googleStandardPrice = (plan: Plan): number => {
  const model = plan.request.model === undefined ? defaults.model : plan.model
  const wanted = (plan.adjustments.find((adjustment) => adjustment.field === "size")?.from ?? plan.size) as Size
  const sizes = findModel(model)?.sizes ?? Sizes
  const size = sizes.includes(wanted)
    ? wanted
    : (sizes.find((candidate) => Sizes.indexOf(candidate) >= Sizes.indexOf(wanted)) ?? sizes[sizes.length - 1]!)
  return expectedCost(model, size, "standard")
}

/** The hedge budget of the pipeline's `generate` stage (share of calls), if it hedges. @category pipelines */
export const hedgeBudgetOf = (pipeline: Pipeline): number | undefined => {
  const config = pipeline.stages.find((candidate) => candidate.key === "generate")?.config as
    | { readonly hedge?: { readonly budget?: number } }
    | undefined
  return config?.hedge === undefined ? undefined : (config.hedge.budget ?? 0.1)
}

/** The TTL of the pipeline's cache stage, if it has one. @category pipelines */
export const cacheTtlOf = (pipeline: Pipeline): number | undefined => {
  const stage = pipeline.stages.find((candidate) => candidate.key === "cache")
  return stage === undefined ? undefined : ttlOf(stage.config)
}

const emptySlice = (): Slice => ({ images: 0, cached: 0, usd: 0, baselineUsd: 0 })

const add = (table: Record<string, Slice>, key: string, slice: Omit<Slice, never>) => {
  const current = table[key] ?? emptySlice()
  current.images += slice.images
  current.cached += slice.cached
  current.usd += slice.usd
  current.baselineUsd += slice.baselineUsd
  table[key] = current
}

/** One line of work: a request, how many images of it, and what share of them the cache answers. */
interface Line {
  readonly request: ImageRequest
  readonly images: number
  /** Share of `images` answered by the cache (0 to 1). */
  readonly cachedShare: number | ((plan: Plan) => number)
}

const estimateLines = (
  runner: RunnerShape,
  lines: Iterable<Line>,
  per: Report["per"],
): Effect.Effect<Omit<Report, "cache"> & { readonly cachedImages: number; readonly cacheSavedUsd: number }> =>
  Effect.gen(function* () {
    const byChannel: Record<string, Slice> = {}
    const byModel: Record<string, Slice> = {}
    const bySize: Record<string, Slice> = {}
    const byUrgency: Record<string, Slice> = {}
    const invalid: Array<{ id: string; message: string }> = []
    let images = 0
    let total = 0
    let baseline = 0
    let cachedImages = 0
    let cacheSaved = 0
    let unservable = 0
    let batchRequested = 0
    let inBatch = 0
    let batchSaves = 0
    for (const line of lines) {
      const planned = yield* Effect.result(runner.plan(line.request))
      if (planned._tag === "Failure") {
        invalid.push({ id: line.request.id ?? "(no id)", message: planned.failure.message })
        continue
      }
      const plan = planned.success
      const price = expectedPrice(plan, runner.channels)
      const share = typeof line.cachedShare === "number" ? line.cachedShare : line.cachedShare(plan)
      const cached = line.images * share
      const paid = line.images - cached
      const usd = paid * (price ?? 0)
      const google = line.images * googleStandardPrice(plan)
      images += line.images
      total += usd
      baseline += google
      cachedImages += cached
      cacheSaved += cached * (price ?? 0)
      if (price === undefined) unservable += line.images
      const slice = { images: line.images, cached, usd, baselineUsd: google }
      add(byChannel, price === undefined ? "(none can serve)" : plan.candidates[0]!, {
        ...slice,
        cached: 0,
        images: paid,
      })
      if (cached > 0) add(byChannel, "(cache)", { images: cached, cached, usd: 0, baselineUsd: 0 })
      add(byModel, plan.model, slice)
      add(bySize, plan.size, slice)
      add(byUrgency, line.request.urgency ?? "realtime", slice)
      if (line.request.urgency === "batch") {
        batchRequested += line.images
        if (plan.urgency === "batch") inBatch += line.images
        else if (price !== undefined) {
          const batchPrice = expectedCost(plan.model, plan.size, "standard") * batchDiscount
          batchSaves += paid * Math.max(0, price - batchPrice)
        }
      }
    }
    const rounded = (table: Record<string, Slice>) =>
      Object.fromEntries(
        Object.entries(table)
          .sort(([, left], [, right]) => right.usd - left.usd || right.images - left.images)
          .map(([key, slice]) => [
            key,
            {
              images: round(slice.images),
              cached: round(slice.cached),
              usd: round(slice.usd),
              baselineUsd: round(slice.baselineUsd),
            },
          ]),
      )
    return {
      pipeline: runner.pipeline.name,
      per,
      images: round(images),
      calls: round(images - cachedImages),
      totalUsd: round(total),
      baselineUsd: round(baseline),
      savedUsd: round(baseline - total),
      batch: { requested: round(batchRequested), inBatch: round(inBatch), wouldSaveUsd: round(batchSaves) },
      byChannel: rounded(byChannel),
      byModel: rounded(byModel),
      bySize: rounded(bySize),
      byUrgency: rounded(byUrgency),
      unservable: round(unservable),
      invalid,
      cachedImages: round(cachedImages),
      cacheSavedUsd: round(cacheSaved),
    }
  })

const finishReport = (
  body: Omit<Report, "cache"> & { readonly cachedImages: number; readonly cacheSavedUsd: number },
  ttlMillis: number | undefined,
  hedgeBudget: number | undefined,
): Report => {
  const { cachedImages, cacheSavedUsd, ...rest } = body
  return {
    ...rest,
    ...(hedgeBudget === undefined
      ? {}
      : { hedging: { budget: hedgeBudget, upToUsd: round(rest.totalUsd * hedgeBudget) } }),
    cache: {
      enabled: ttlMillis !== undefined,
      ...(ttlMillis === undefined ? {} : { ttlMillis }),
      images: cachedImages,
      savedUsd: cacheSavedUsd,
    },
  }
}

/**
 * Estimate a month of a workload: each request class planned once and weighted by its requests a month.
 *
 * @category estimates
 */
export const workload = (runner: RunnerShape, work: Workload): Effect.Effect<Report> => {
  const ttl = cacheTtlOf(runner.pipeline)
  const repeats = work.repeats
  const cachedShare = ttl !== undefined && repeats !== undefined && ttl >= repeats.withinMillis ? repeats.share : 0
  return Effect.map(
    estimateLines(
      runner,
      work.classes.map((entry) => ({ request: entry.request, images: entry.perMonth, cachedShare })),
      "month",
    ),
    (body) => ({
      ...finishReport(body, ttl, hedgeBudgetOf(runner.pipeline)),
      briefBaselineUsd: round(brief.usdPerImage * brief.imagesPerMonth),
    }),
  )
}

/**
 * Estimate a request file: every request planned; with a cache in the pipeline, a request whose cache
 * key appeared earlier in the file is a hit.
 *
 * @category estimates
 */
export const requests = (runner: RunnerShape, list: Iterable<ImageRequest>): Effect.Effect<Report> => {
  const ttl = cacheTtlOf(runner.pipeline)
  const seen = new Set<string>()
  const lines = Array.from(list, (request) => ({
    request,
    images: 1,
    cachedShare: (plan: Plan) => {
      if (ttl === undefined) return 0
      const key = Cache.keyOf(plan.channelRequest)
      if (seen.has(key)) return 1
      seen.add(key)
      return 0
    },
  }))
  return Effect.map(estimateLines(runner, lines, "input"), (body) =>
    finishReport(body, ttl, hedgeBudgetOf(runner.pipeline)),
  )
}

/**
 * After a run: what the images made would have cost at Google's standard price, and what the cache
 * saved (each cached image at the price its plan would have paid). Placeholders are left out.
 *
 * @category runs
 */
export const afterRun = (
  runner: RunnerShape,
  done: ReadonlyArray<{ readonly request: ImageRequest; readonly result: ImageResult }>,
): Effect.Effect<{ readonly googleUsd: number; readonly cacheSavedUsd: number; readonly cachedImages: number }> =>
  Effect.gen(function* () {
    let google = 0
    let saved = 0
    let cachedImages = 0
    for (const { request, result } of done) {
      if (result.placeholder) continue
      const planned = yield* Effect.result(runner.plan(request))
      if (planned._tag === "Failure") continue
      google += googleStandardPrice(planned.success)
      if (result.cached) {
        cachedImages += 1
        saved += expectedPrice(planned.success, runner.channels) ?? 0
      }
    }
    return { googleUsd: round(google), cacheSavedUsd: round(saved), cachedImages }
  })

/** The one-line cost summary `pnpm demo` ends with. @category runs */
export const costLine = (
  spentUsd: number,
  after: { readonly googleUsd: number; readonly cacheSavedUsd: number; readonly cachedImages: number },
): string => {
  const less = after.googleUsd > 0 ? ` (${Math.round((1 - spentUsd / after.googleUsd) * 100)}% less)` : ""
  return `cost: spent ${Money.format(spentUsd)}; Google direct at its standard price would have cost ${Money.format(after.googleUsd)}${less}; the cache saved ${Money.format(after.cacheSavedUsd)} (${after.cachedImages} image${after.cachedImages === 1 ? "" : "s"} at $0)`
}
