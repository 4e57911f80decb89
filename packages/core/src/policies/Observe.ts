/**
 * What hedging and attempt timeouts derive from the {@link ChannelStats} service: each call is recorded
 * there (its latency, whether it returned an image — by channel, by channel, model and size, and by model
 * on every channel), and counted in the {@link HedgeBudget}. From it come the delay before hedging a
 * channel (fixed, or its observed p95), the hedge budget (hedges at most a share of calls over a sliding
 * window) and the adaptive attempt timeout.
 *
 * @since 0.2.0
 */

import type { Channel } from "@peel/contract/Channel"
import { Cause, Effect, Exit } from "effect"
import type { Plan } from "../plan/Plan.ts"
import * as ChannelStats from "../state/ChannelStats.ts"
import type { HedgeBudgetShape } from "../state/HedgeBudget.ts"
import type { AttemptPolicy, HedgeBudget } from "./Call.ts"

const defaultHedgeMillis = 20_000

/**
 * Record each call (innermost policy): its latency and outcome in the channel statistics, and one call in
 * the hedge budget. An interrupted call (a hedge that lost) is no sample.
 *
 * @category policies
 */
export const observe =
  (
    stats: ChannelStats.ChannelStatsShape,
    budget?: { readonly service: HedgeBudgetShape; readonly key: string; readonly windowMillis: number },
  ): AttemptPolicy =>
  (call) =>
  (channel, plan, markers) =>
    Effect.clockWith((clock) => {
      const started = clock.currentTimeMillisUnsafe()
      const called = call(channel, plan, markers)
      return Effect.onExit(
        budget === undefined
          ? called
          : Effect.andThen(budget.service.recordCall(budget.key, budget.windowMillis), called),
        (exit) => {
          if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) return Effect.void
          const sample = { latencyMs: clock.currentTimeMillisUnsafe() - started, ok: Exit.isSuccess(exit) }
          return Effect.forEach(
            [
              ChannelStats.keyOf(channel.name),
              ChannelStats.modelKeyOf(plan.model),
              ChannelStats.keyOf(channel.name, plan.model),
              ChannelStats.keyOf(channel.name, plan.model, plan.size),
            ],
            (key) => stats.record(key, sample),
            { discard: true },
          )
        },
      )
    })

/**
 * The hedge delay for a channel and plan: fixed, or the observed p95 of that channel for the plan's model
 * and size — or, until enough of those are known, for the model at any size, or for the channel at all —
 * and `initial` (20 s by default) until any is known.
 *
 * @category hedging
 */
export const hedgeDelay =
  (stats: ChannelStats.ChannelStatsShape, after: number | "auto", initial: number = defaultHedgeMillis) =>
  (channel: Channel, plan: Plan): Effect.Effect<number> =>
    after === "auto"
      ? Effect.map(
          observedPercentile(stats, 95, [
            ChannelStats.keyOf(channel.name, plan.model, plan.size),
            ChannelStats.keyOf(channel.name, plan.model),
            ChannelStats.keyOf(channel.name),
          ]),
          (p95) => p95 ?? initial,
        )
      : Effect.succeed(after)

/** The first of `keys` (most specific first) with enough samples for the `p`-th percentile. */
const observedPercentile = (
  stats: ChannelStats.ChannelStatsShape,
  p: number,
  keys: ReadonlyArray<string>,
  from = 0,
): Effect.Effect<number | undefined> =>
  from >= keys.length
    ? Effect.undefined
    : Effect.flatMap(stats.summary(keys[from]!), (summary) => {
        const value = ChannelStats.percentile(summary, p)
        return value === undefined ? observedPercentile(stats, p, keys, from + 1) : Effect.succeed(value)
      })

/**
 * At most `share` hedges per call over the last `windowMillis` under `key` (one hedge is always allowed
 * to start a window, so a quiet runner can still hedge its first slow call).
 *
 * @category hedging
 */
export const hedgeBudget = (
  service: HedgeBudgetShape,
  key: string,
  share: number,
  windowMillis: number,
): HedgeBudget => ({
  allow: service.tryHedge(key, share, windowMillis),
})

/**
 * Adaptive attempt timeouts. Once {@link ChannelStats.minimumSamples} successful calls of a channel for a
 * model and size are known (or, until then, of the channel for the model at any size, or of the model on
 * any channel), an attempt there gets `max(floor, factor × p99)` — bounded by the configured timeout,
 * which also applies until then. A hang then costs a few times the slowest normal answer, not the whole
 * configured timeout.
 *
 * @category timeouts
 */
export interface AdaptiveTimeout {
  readonly factor: number
  readonly floorMillis: number
}

/** @category defaults */
export const adaptiveDefaults: AdaptiveTimeout = { factor: 3, floorMillis: 10_000 }

/** The attempt timeout for a call, by {@link AdaptiveTimeout}'s rule. @category timeouts */
export const attemptTimeout =
  (stats: ChannelStats.ChannelStatsShape, configured: number | undefined, adaptive: AdaptiveTimeout | undefined) =>
  (channel: Channel, plan: Plan): Effect.Effect<number | undefined> =>
    configured === undefined || adaptive === undefined
      ? Effect.succeed(configured)
      : Effect.map(
          // The channel's own latency for this model: this size when enough is known, else all its sizes
          // (the floor and the factor leave room for a larger size than most), else the model's on every
          // channel: a channel that has hardly answered yet (cooling down after 429s, or new) is held to
          // how long the model takes elsewhere instead of the whole configured timeout.
          observedPercentile(stats, 99, [
            ChannelStats.keyOf(channel.name, plan.model, plan.size),
            ChannelStats.keyOf(channel.name, plan.model),
            ChannelStats.modelKeyOf(plan.model),
          ]),
          (p99) => adaptiveTimeout(configured, adaptive, p99),
        )

/** `max(floor, factor × p99)`, at most `configured`; `configured` while p99 is unknown. @category timeouts */
export const adaptiveTimeout = (configured: number, adaptive: AdaptiveTimeout, p99: number | undefined): number =>
  p99 === undefined
    ? configured
    : Math.min(configured, Math.max(adaptive.floorMillis, Math.ceil(adaptive.factor * p99)))
