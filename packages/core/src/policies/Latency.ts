/**
 * What the runner observes of each channel — latency of successful calls and how many calls were made —
 * and what hedging derives from it: the delay before hedging a channel (fixed, or its observed p95) and
 * the hedge budget (hedges at most a share of calls over a sliding window).
 *
 * @since 0.2.0
 */

import type { Channel } from "@peel/contract/Channel"
import { Clock, Effect } from "effect"
import type { AttemptPolicy, HedgeBudget } from "./Call.ts"

const samplesKept = 200
const minimumSamples = 20
const defaultHedgeMillis = 20_000

/** Per-channel observations, shared by every request of a runner. @category model */
export interface Observations {
  readonly latencies: Map<string, Array<number>>
  /** Call timestamps (epoch ms) and hedge timestamps, for the hedge budget. */
  readonly calls: Array<number>
  readonly hedges: Array<number>
}

/** @category constructors */
export const make = (): Observations => ({ latencies: new Map(), calls: [], hedges: [] })

/** The `p`-th percentile (0–100) of a channel's observed latency, once enough calls are known. @category queries */
export const percentile = (observations: Observations, channel: string, p: number): number | undefined => {
  const samples = observations.latencies.get(channel)
  if (samples === undefined || samples.length < minimumSamples) return undefined
  const sorted = [...samples].sort((left, right) => left - right)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/** Record each call (innermost policy): its time, and its latency when it returned an image. @category policies */
export const observe =
  (observations: Observations): AttemptPolicy =>
  (call) =>
  (channel, plan, markers) =>
    Effect.flatMap(Clock.currentTimeMillis, (started) => {
      observations.calls.push(started)
      return call(channel, plan, markers).pipe(
        Effect.tap(() =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            const samples = observations.latencies.get(channel.name) ?? []
            samples.push(now - started)
            if (samples.length > samplesKept) samples.shift()
            observations.latencies.set(channel.name, samples)
          }),
        ),
      )
    })

/** The hedge delay for a channel: fixed, or its observed p95 (20 s until enough is known). @category hedging */
export const hedgeDelay =
  (observations: Observations, after: number | "auto", initial: number = defaultHedgeMillis) =>
  (channel: Channel): number =>
    after === "auto" ? (percentile(observations, channel.name, 95) ?? initial) : after

/**
 * At most `share` hedges per call over the last `windowMillis` (one hedge is always allowed to start a
 * window, so a quiet runner can still hedge its first slow call).
 *
 * @category hedging
 */
export const hedgeBudget = (
  observations: Observations,
  share: number,
  windowMillis: number,
  now: () => number = Date.now,
): HedgeBudget => ({
  allow: () => {
    const since = now() - windowMillis
    while (observations.calls.length > 0 && observations.calls[0]! < since) observations.calls.shift()
    while (observations.hedges.length > 0 && observations.hedges[0]! < since) observations.hedges.shift()
    if (share <= 0) return false
    if (observations.hedges.length + 1 > share * observations.calls.length + 1) return false
    observations.hedges.push(now())
    return true
  },
})
