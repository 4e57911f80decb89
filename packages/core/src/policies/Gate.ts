/**
 * The channel gate, an attempt-level policy that keeps Peel from causing the 429s it would then retry:
 *
 * - a client-side rate limit per channel (requests per minute): the {@link RateLimits} service's sliding
 *   window, so no more than `rpm` calls start in any 60 s (plus a one-second margin for the time a call
 *   takes to reach the upstream);
 * - channels that draw on one upstream quota (AI Studio and Vertex on one project, two channels with
 *   one key) name the same `quota`, and share its limit and its pause;
 * - a 429 that says how long to wait pauses the whole quota for that model ({@link QuotaPauses}), not
 *   just one request: a call to a paused quota is not sent (recorded as `CoolingDown`); retry waits the
 *   pause out when it is short enough, failover moves on otherwise. Only a 429 from a call sent after the
 *   pause began extends it;
 * - a per-channel concurrency cap ({@link Concurrency}: leased slots, given back if a process dies).
 *
 * All of it lives in the state services, so runners sharing a state Layer share limits, pauses and slots.
 *
 * @since 0.2.0
 */

import type { Channel } from "@peel/contract/Channel"
import { RateLimited } from "@peel/contract/Errors"
import { type Clock, Effect } from "effect"
import { Journal } from "../engine/AttemptJournal.ts"
import { Concurrency, withSlot } from "../state/Concurrency.ts"
import { QuotaPauses } from "../state/QuotaPauses.ts"
import { RateLimits } from "../state/RateLimits.ts"
import type { AttemptPolicy, CallMarkers } from "./Call.ts"

/** Limits for one channel. @category model */
export interface GateSettings {
  readonly rpm?: number | undefined
  readonly concurrency?: number | undefined
  /** Channels naming the same quota share its rate limit and its pauses. */
  readonly quota?: string | undefined
}

/** What the gate knows, shared by every request of a runner (and every runner sharing its state). @category model */
export interface Gates {
  /** Epoch ms until which `channel`'s quota for `model` is paused (0 when it is not). */
  readonly pausedUntil: (channel: string, model: string) => Effect.Effect<number>
  readonly policy: AttemptPolicy
}

/** The longest pause a single 429 may impose on a quota. */
const maxPauseMillis = 5 * 60_000

/**
 * The rate-limit window: a minute, plus a margin for the time between a call's start here and its
 * arrival upstream (an upstream counting any 60 s must never see `rpm + 1` arrivals in one).
 *
 * @category defaults
 */
export const rateWindowMillis = 61_000

/** Build the gates for a runner's channels. @category constructors */
export const make = (
  settings: Readonly<Record<string, GateSettings>>,
): Effect.Effect<Gates, never, RateLimits | QuotaPauses | Concurrency> =>
  Effect.gen(function* () {
    const limits = yield* RateLimits
    const pauses = yield* QuotaPauses
    const concurrency = yield* Concurrency
    const quotaOf = (channel: string): string => settings[channel]?.quota ?? channel
    // Google's quotas are per model: a pause is keyed by quota and model, so a Pro 429 never blocks Flash.
    const pauseKey = (channel: string, model: string): string => `peel:pause:${quotaOf(channel)}|${model}`
    const pausedUntil = (channel: string, model: string) => pauses.pausedUntil(pauseKey(channel, model))

    /** A paused quota is not waited on here: the attempt ends at once (no call), and retry or failover decide. */
    const checkPause = (
      channel: Channel,
      model: string,
      size: string,
      markers: CallMarkers,
      clock: Clock.Clock,
    ): Effect.Effect<void, RateLimited, Journal> => {
      const now = clock.currentTimeMillisUnsafe()
      return Effect.flatMap(pausedUntil(channel.name, model), (until) => {
        if (until <= now) return Effect.void
        const message = `quota ${quotaOf(channel.name)} for ${model} is paused for ${until - now} ms after a 429`
        return Journal.use((journal) => {
          journal.record({
            channel: channel.name,
            model,
            size,
            startedAt: now,
            latencyMs: 0,
            outcome: "CoolingDown",
            message,
            retryAfterMs: until - now,
            costUsd: 0,
            ...(markers.hedge === true ? { hedge: true } : {}),
            ...(markers.sameChannel === true ? { sameChannel: true } : {}),
          })
          return Effect.fail(new RateLimited({ channel: channel.name, message, retryAfterMs: until - now }))
        })
      })
    }

    /** How long the channel's rate limit makes this call wait, waited here; undefined without an rpm. */
    const throttle = (channel: Channel): Effect.Effect<void> | undefined => {
      const rpm = settings[channel.name]?.rpm
      if (rpm === undefined) return undefined
      return Effect.flatMap(limits.acquire(`peel:rpm:${quotaOf(channel.name)}`, rpm, rateWindowMillis), (wait) =>
        wait > 0 ? Effect.sleep(wait) : Effect.void,
      )
    }

    const policy: AttemptPolicy = (call) => (channel, plan, markers) => {
      const gated = Effect.clockWith((clock) => {
        const called = Effect.suspend(() => {
          const sentAt = clock.currentTimeMillisUnsafe()
          return call(channel, plan, markers).pipe(
            Effect.tapError((error) =>
              error._tag !== "RateLimited" || error.retryAfterMs === undefined || error.daily === true
                ? Effect.void
                : Effect.suspend(() =>
                    pauses.pause(pauseKey(channel.name, plan.model), {
                      until: clock.currentTimeMillisUnsafe() + Math.min(error.retryAfterMs!, maxPauseMillis),
                      sentAt,
                    }),
                  ),
            ),
          )
        })
        const throttled = throttle(channel)
        return Effect.andThen(
          checkPause(channel, plan.model, plan.size, markers, clock),
          throttled === undefined ? called : Effect.andThen(throttled, called),
        )
      })
      const cap = settings[channel.name]?.concurrency
      return cap === undefined ? gated : withSlot(concurrency, `peel:concurrency:${channel.name}`, cap)(gated)
    }

    return { pausedUntil, policy }
  })
