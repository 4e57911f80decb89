/**
 * Channel statistics: what Peel observed of each channel's calls — one record per key (a channel, or a
 * channel with a model and size). Everything latency-driven reads it:
 *
 * - `select: { strategy: fastest }` orders channels by {@link Summary.averageMs}, an exponentially weighted
 *   moving average of call latency where a failed call counts as at least twice the current average (a
 *   fast 503 must not make a channel look fast);
 * - hedging (`after: auto`) waits a channel's observed p95 ({@link percentile});
 * - adaptive attempt timeouts use its p99.
 *
 * Percentiles are taken over the latencies of the last {@link samplesKept} successful calls, once at least
 * {@link minimumSamples} are known. A network store implements {@link ChannelStatsShape.record} atomically
 * with {@link fold} as the rule (a Redis hash and a capped list in one script).
 *
 * @since 0.4.0
 */
import { Context, Effect, Layer } from "effect"

/** One call: its latency and whether it returned an image. @category model */
export interface Sample {
  readonly latencyMs: number
  readonly ok: boolean
}

/** What is known of one key. @category model */
export interface Summary {
  /** Calls observed. */
  readonly samples: number
  /** Moving average of call latency (ms). */
  readonly averageMs: number
  /** Latencies of the last successful calls, oldest first. */
  readonly recent: ReadonlyArray<number>
}

/** @category model */
export interface ChannelStatsShape {
  /** Add one call to `key`'s statistics. Atomic. */
  readonly record: (key: string, sample: Sample) => Effect.Effect<void>
  /** What is known of `key`; `undefined` before its first call. */
  readonly summary: (key: string) => Effect.Effect<Summary | undefined>
}

/** @category services */
export class ChannelStats extends Context.Service<ChannelStats, ChannelStatsShape>()("@peel/core/state/ChannelStats") {}

/** Successful latencies kept per key. @category defaults */
export const samplesKept = 200
/** Successful calls needed before a percentile is trusted. @category defaults */
export const minimumSamples = 20
/** Weight of each new sample in the moving average. @category defaults */
export const alpha = 0.3

/** The rule every implementation applies: `current` with one more call. @category rules */
export const fold = (current: Summary | undefined, sample: Sample, weight = alpha): Summary => {
  const value =
    sample.ok || current === undefined ? sample.latencyMs : Math.max(sample.latencyMs, 2 * current.averageMs)
  const previous = current?.recent ?? []
  let recent = previous
  if (sample.ok) {
    // One copy per call (it runs on every call): the last samplesKept - 1 latencies, then this one.
    const kept = previous.slice(Math.max(0, previous.length - samplesKept + 1))
    kept.push(sample.latencyMs)
    recent = kept
  }
  return current === undefined
    ? { samples: 1, averageMs: value, recent }
    : { samples: current.samples + 1, averageMs: current.averageMs + weight * (value - current.averageMs), recent }
}

/** The `p`-th percentile (0–100) of the successful latencies, once `minimum` are known. @category queries */
export const percentile = (summary: Summary | undefined, p: number, minimum = minimumSamples): number | undefined => {
  if (summary === undefined) return undefined
  // The memory store's summaries carry their window sorted: the value at the rank, without a copy.
  const sorted = sortedWindows.get(summary)
  if (sorted !== undefined) {
    const length = sorted.length
    if (length < minimum) return undefined
    return sorted[Math.min(length - 1, Math.floor((p / 100) * length))]!
  }
  if (summary.recent.length < minimum) return undefined
  const length = summary.recent.length
  return select(new Float64Array(summary.recent), Math.min(length - 1, Math.floor((p / 100) * length)))
}

/**
 * The value that would be at `rank` if `values` were sorted ascending (Hoare's selection, linear on
 * average): asked on every call (adaptive timeouts, hedge delays), so no sort of the whole window.
 * Reorders `values`.
 */
const select = (values: Float64Array, rank: number): number => {
  let low = 0
  let high = values.length - 1
  while (low < high) {
    const pivot = values[(low + high) >>> 1]!
    let left = low
    let right = high
    while (left <= right) {
      while (values[left]! < pivot) left++
      while (values[right]! > pivot) right--
      if (left <= right) {
        const swap = values[left]!
        values[left] = values[right]!
        values[right] = swap
        left++
        right--
      }
    }
    if (rank <= right) high = right
    else if (rank >= left) low = left
    else return values[rank]!
  }
  return values[rank]!
}

/** The statistics key of one channel for one model and size (hedge delays, adaptive timeouts). @category keys */
export const keyOf = (channel: string, model?: string, size?: string): string =>
  model === undefined ? channel : `${channel}|${model}|${size ?? ""}`

/**
 * The statistics key of one model on every channel (adaptive timeouts of a channel that has hardly answered
 * yet). It starts with `|`, which no channel's key does. @category keys
 */
export const modelKeyOf = (model: string): string => `|${model}`

/**
 * One key of the memory store: the moving average, and the last {@link samplesKept} successful latencies
 * both in arrival order (a ring from `start`) and sorted, so a percentile is one read. Both change in
 * place; a summary gets a copy of the ring as `recent`, and shares the sorted window (`shared`) until the
 * next sample copies it first, so a summary stays as it was.
 */
interface KeyStats {
  samples: number
  averageMs: number
  ring: Array<number>
  start: number
  sorted: Array<number>
  shared: boolean
}

/** The first index of `sorted` whose value is not below `value`. */
const lowerBound = (sorted: ReadonlyArray<number>, value: number): number => {
  let low = 0
  let high = sorted.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (sorted[middle]! < value) low = middle + 1
    else high = middle
  }
  return low
}

/**
 * The sorted window behind each summary the memory store handed out (a plain {@link Summary}, as any
 * store gives): {@link percentile} reads the rank there instead of copying and selecting.
 */
const sortedWindows = new WeakMap<Summary, ReadonlyArray<number>>()

/** Add one call to `stats` by {@link fold}'s rule (the same average, the same window). */
const addSample = (stats: KeyStats, sample: Sample): void => {
  const value = sample.ok ? sample.latencyMs : Math.max(sample.latencyMs, 2 * stats.averageMs)
  stats.samples += 1
  stats.averageMs = stats.averageMs + alpha * (value - stats.averageMs)
  if (!sample.ok) return
  if (stats.shared) {
    stats.sorted = stats.sorted.slice()
    stats.shared = false
  }
  const { ring, sorted } = stats
  if (ring.length === samplesKept) {
    // The oldest leaves the window (any copy of its value: they are equal).
    sorted.splice(lowerBound(sorted, ring[stats.start]!), 1)
    ring[stats.start] = sample.latencyMs
    stats.start = (stats.start + 1) % samplesKept
  } else ring.push(sample.latencyMs)
  sorted.splice(lowerBound(sorted, sample.latencyMs), 0, sample.latencyMs)
}

/** One process's channel statistics, in memory. @category constructors */
export const makeMemory: Effect.Effect<ChannelStatsShape> = Effect.sync(() => {
  const keys = new Map<string, KeyStats>()
  return {
    record: (key, sample) =>
      Effect.sync(() => {
        const stats = keys.get(key)
        if (stats !== undefined) return addSample(stats, sample)
        keys.set(key, {
          samples: 1,
          averageMs: sample.latencyMs,
          ring: sample.ok ? [sample.latencyMs] : [],
          start: 0,
          sorted: sample.ok ? [sample.latencyMs] : [],
          shared: false,
        })
      }),
    summary: (key) =>
      Effect.sync(() => {
        const stats = keys.get(key)
        if (stats === undefined) return undefined
        // `recent` oldest first, from the ring; the sorted window shared until the next sample copies it.
        const { ring, start } = stats
        const length = ring.length
        const recent = new Array<number>(length)
        for (let index = 0; index < length; index++) recent[index] = ring[(start + index) % length]!
        const summary: Summary = { samples: stats.samples, averageMs: stats.averageMs, recent }
        stats.shared = true
        sortedWindows.set(summary, stats.sorted)
        return summary
      }),
  }
})

/** @category layers */
export const layerMemory: Layer.Layer<ChannelStats> = Layer.effect(ChannelStats, makeMemory)
