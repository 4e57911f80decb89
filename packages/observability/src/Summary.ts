/**
 * What a call log adds up to: totals (requests, upstream calls, billed images, dollars — the same three
 * numbers the simulator's ledger keeps), latency p50/p99 per channel, errors by tag, spend by channel and
 * model, cache hit rate, alerts, and the same over time in buckets. `peel stats` prints it; `peel report`
 * draws it.
 *
 * Calls, billed images and dollars come from the attempt lines (a run killed before a request ended still
 * counts what it paid for); request counts from the request lines.
 *
 * @since 0.1.0
 */
import { quantile } from "./Alerts.ts"
import type { AlertLine, AttemptLine, CallLogLine, RequestLine } from "./CallLog.ts"
import { isCall } from "./Lines.ts"

/** @category models */
export interface LatencyStats {
  readonly count: number
  readonly p50: number
  readonly p99: number
}

/** @category models */
export interface ChannelStats {
  readonly channel: string
  readonly calls: number
  readonly errors: number
  readonly billedImages: number
  readonly spentUsd: number
  readonly latency: LatencyStats
}

/** What one virtual key did (gateway requests carry the key's name). @category models */
export interface KeyStats {
  readonly key: string
  readonly requests: number
  readonly ok: number
  readonly failed: number
  readonly cached: number
  /** Calls that were billed (an image, or a billed failure). */
  readonly billedImages: number
  readonly spentUsd: number
}

/** One slice of time. @category models */
export interface Bucket {
  readonly start: number
  readonly end: number
  /** Latency of calls ending in the bucket, per channel. */
  readonly latency: Readonly<Record<string, LatencyStats>>
  readonly calls: number
  /** Failed calls ending in the bucket, by error tag. */
  readonly errors: Readonly<Record<string, number>>
  readonly requests: number
  readonly images: number
  readonly cacheHits: number
  readonly spentUsd: number
}

/** @category models */
export interface Summary {
  readonly runs: ReadonlyArray<string>
  readonly from: number | undefined
  readonly to: number | undefined
  readonly requests: {
    readonly total: number
    readonly ok: number
    readonly failed: number
    readonly cached: number
    readonly placeholders: number
    readonly hedged: number
    readonly fallback: number
    readonly latency: LatencyStats
    readonly failures: Readonly<Record<string, number>>
  }
  /** Upstream calls (refusals and cache hits excluded). */
  readonly calls: number
  /** Calls that were billed (an image, or a billed failure). */
  readonly billedImages: number
  readonly spentUsd: number
  /** Dollars per image made (every dollar, billed failures included, over successful requests). */
  readonly costPerImageUsd: number
  /** Requests answered from the cache, over requests that ended. */
  readonly cacheHitRate: number
  readonly errorRate: number
  readonly errorsByTag: Readonly<Record<string, number>>
  readonly channels: ReadonlyArray<ChannelStats>
  readonly spendByChannel: Readonly<Record<string, number>>
  readonly spendByModel: Readonly<Record<string, number>>
  /** Per virtual key, most spent first (only lines that carry a key: requests through the gateway). */
  readonly keys: ReadonlyArray<KeyStats>
  readonly alerts: ReadonlyArray<AlertLine>
  readonly bucketMs: number
  readonly buckets: ReadonlyArray<Bucket>
}

const usd = (value: number) => Math.round(value * 1e6) / 1e6

const latencyOf = (values: ReadonlyArray<number>): LatencyStats => ({
  count: values.length,
  p50: Math.round(quantile(values, 0.5)),
  p99: Math.round(quantile(values, 0.99)),
})

const niceSteps = [
  1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000,
  7_200_000, 21_600_000, 43_200_000, 86_400_000,
]

/** A bucket length that cuts `span` into about `target` slices (a round number of seconds, minutes, hours). @category utils */
export const bucketLength = (span: number, target = 30): number =>
  niceSteps.find((step) => span / step <= target) ?? Math.ceil(span / target / 86_400_000) * 86_400_000

const endOf = (attempt: AttemptLine) => Date.parse(attempt.startedAt) + attempt.latencyMs

const add = (record: Record<string, number>, key: string, value: number) => {
  record[key] = (record[key] ?? 0) + value
}

/** Is this attempt a failed upstream call (for error rates)? Interrupted hedge losers are not. */
const failedCall = (attempt: AttemptLine) =>
  isCall(attempt) && attempt.outcome !== "ok" && attempt.outcome !== "Interrupted"

/**
 * Add up a call log's lines.
 *
 * @category constructors
 */
export const summarize = (lines: ReadonlyArray<CallLogLine>, options: { readonly buckets?: number } = {}): Summary => {
  const attempts = lines.filter((line): line is AttemptLine => line.type === "attempt")
  const requests = lines.filter((line): line is RequestLine => line.type === "request")
  const alerts = lines
    .filter((line): line is AlertLine => line.type === "alert")
    .sort((a, b) => a.time.localeCompare(b.time))
  const runs = [...new Set(lines.map((line) => line.runId))]

  const times = [
    ...attempts.flatMap((attempt) => [Date.parse(attempt.startedAt), endOf(attempt)]),
    ...requests.map((request) => Date.parse(request.time)),
    ...alerts.map((alert) => Date.parse(alert.time)),
  ].filter(Number.isFinite)
  let from: number | undefined
  let to: number | undefined
  for (const time of times) {
    if (from === undefined || time < from) from = time
    if (to === undefined || time > to) to = time
  }

  const calls = attempts.filter(isCall)
  const errorsByTag: Record<string, number> = {}
  const spendByChannel: Record<string, number> = {}
  const spendByModel: Record<string, number> = {}
  const byChannel = new Map<
    string,
    { calls: number; errors: number; billed: number; spent: number; latencies: Array<number> }
  >()
  let spent = 0
  let billed = 0
  let failedCalls = 0
  for (const attempt of attempts) {
    spent += attempt.costUsd
    if (attempt.costUsd > 0) {
      billed += 1
      add(spendByChannel, attempt.channel, attempt.costUsd)
      add(spendByModel, attempt.model, attempt.costUsd)
    }
    if (!isCall(attempt)) continue
    let channel = byChannel.get(attempt.channel)
    if (channel === undefined) {
      channel = { calls: 0, errors: 0, billed: 0, spent: 0, latencies: [] }
      byChannel.set(attempt.channel, channel)
    }
    channel.calls += 1
    channel.spent += attempt.costUsd
    if (attempt.costUsd > 0) channel.billed += 1
    if (attempt.outcome !== "Interrupted") channel.latencies.push(attempt.latencyMs)
    if (failedCall(attempt)) {
      failedCalls += 1
      channel.errors += 1
      add(errorsByTag, attempt.outcome, 1)
    }
  }
  for (const record of [spendByChannel, spendByModel]) for (const key in record) record[key] = usd(record[key]!)

  const byKey = new Map<string, { requests: number; ok: number; cached: number; billed: number; spent: number }>()
  const keyStats = (key: string) => {
    let stats = byKey.get(key)
    if (stats === undefined) {
      stats = { requests: 0, ok: 0, cached: 0, billed: 0, spent: 0 }
      byKey.set(key, stats)
    }
    return stats
  }
  for (const attempt of attempts) {
    if (attempt.key === undefined) continue
    const stats = keyStats(attempt.key)
    stats.spent += attempt.costUsd
    if (attempt.costUsd > 0) stats.billed += 1
  }
  for (const request of requests) {
    if (request.key === undefined) continue
    const stats = keyStats(request.key)
    stats.requests += 1
    if (request.outcome === "ok") stats.ok += 1
    if (request.cached) stats.cached += 1
  }

  const ok = requests.filter((request) => request.outcome === "ok")
  const failures: Record<string, number> = {}
  for (const request of requests) if (request.outcome !== "ok") add(failures, request.outcome, 1)
  const cached = requests.filter((request) => request.cached).length

  const span = from === undefined || to === undefined ? 0 : to - from
  const bucketMs = bucketLength(Math.max(span, 1), options.buckets ?? 30)
  const first = from === undefined ? 0 : Math.floor(from / bucketMs) * bucketMs
  const count = from === undefined || to === undefined ? 0 : Math.floor((to - first) / bucketMs) + 1
  const slots = Array.from({ length: count }, (_, index) => ({
    start: first + index * bucketMs,
    end: first + (index + 1) * bucketMs,
    latencies: new Map<string, Array<number>>(),
    calls: 0,
    errors: {} as Record<string, number>,
    requests: 0,
    images: 0,
    cacheHits: 0,
    spentUsd: 0,
  }))
  const slotOf = (time: number) => slots[Math.min(count - 1, Math.max(0, Math.floor((time - first) / bucketMs)))]
  for (const attempt of attempts) {
    const slot = slotOf(endOf(attempt))
    if (slot === undefined) continue
    slot.spentUsd += attempt.costUsd
    if (!isCall(attempt)) continue
    slot.calls += 1
    if (attempt.outcome !== "Interrupted") {
      const list = slot.latencies.get(attempt.channel) ?? []
      list.push(attempt.latencyMs)
      slot.latencies.set(attempt.channel, list)
    }
    if (failedCall(attempt)) add(slot.errors, attempt.outcome, 1)
  }
  for (const request of requests) {
    const slot = slotOf(Date.parse(request.time))
    if (slot === undefined) continue
    slot.requests += 1
    if (request.outcome === "ok") slot.images += 1
    if (request.cached) slot.cacheHits += 1
  }

  return {
    runs,
    from,
    to,
    requests: {
      total: requests.length,
      ok: ok.length,
      failed: requests.length - ok.length,
      cached,
      placeholders: requests.filter((request) => request.placeholder).length,
      hedged: requests.filter((request) => request.hedged).length,
      fallback: requests.filter((request) => request.fallback).length,
      latency: latencyOf(requests.map((request) => request.latencyMs)),
      failures,
    },
    calls: calls.length,
    billedImages: billed,
    spentUsd: usd(spent),
    costPerImageUsd: ok.length === 0 ? 0 : usd(spent / ok.length),
    cacheHitRate: requests.length === 0 ? 0 : cached / requests.length,
    errorRate: calls.length === 0 ? 0 : failedCalls / calls.length,
    errorsByTag,
    channels: [...byChannel.entries()]
      .map(([channel, stats]) => ({
        channel,
        calls: stats.calls,
        errors: stats.errors,
        billedImages: stats.billed,
        spentUsd: usd(stats.spent),
        latency: latencyOf(stats.latencies),
      }))
      .sort((a, b) => b.calls - a.calls || a.channel.localeCompare(b.channel)),
    spendByChannel,
    spendByModel,
    keys: [...byKey.entries()]
      .map(([key, stats]) => ({
        key,
        requests: stats.requests,
        ok: stats.ok,
        failed: stats.requests - stats.ok,
        cached: stats.cached,
        billedImages: stats.billed,
        spentUsd: usd(stats.spent),
      }))
      .sort((a, b) => b.spentUsd - a.spentUsd || a.key.localeCompare(b.key)),
    alerts,
    bucketMs,
    buckets: slots.map((slot) => ({
      start: slot.start,
      end: slot.end,
      latency: Object.fromEntries([...slot.latencies.entries()].map(([channel, list]) => [channel, latencyOf(list)])),
      calls: slot.calls,
      errors: slot.errors,
      requests: slot.requests,
      images: slot.images,
      cacheHits: slot.cacheHits,
      spentUsd: usd(slot.spentUsd),
    })),
  }
}
