/**
 * The channel gate, an attempt-level policy that keeps Peel from causing the 429s it would then retry:
 *
 * - a client-side rate limit per channel (requests per minute), through `effect/persistence`
 *   `RateLimiter` (memory store here; a Redis store shares it between processes);
 * - channels that draw on one upstream quota (AI Studio and Vertex on one project, two channels with
 *   one key) name the same `quota`, and share its limit and its pause;
 * - a 429 that says how long to wait pauses the whole quota for that model, not just one request: a call
 *   to a paused quota is not sent (recorded as `CoolingDown`); retry waits the pause out when it is short
 *   enough, failover moves on otherwise. Only a 429 from a call sent after the pause began extends it;
 * - a per-channel concurrency cap.
 *
 * @since 0.2.0
 */

import type { Channel } from "@peel/contract/Channel"
import { RateLimited } from "@peel/contract/Errors"
import { Clock, Duration, Effect, Semaphore } from "effect"
import { RateLimiter } from "effect/persistence"
import { Journal } from "../engine/AttemptJournal.ts"
import type { AttemptPolicy } from "./Call.ts"

/** Limits for one channel. @category model */
export interface GateSettings {
  readonly rpm?: number | undefined
  readonly concurrency?: number | undefined
  /** Channels naming the same quota share its rate limit and its pauses. */
  readonly quota?: string | undefined
}

/** What the gate knows, shared by every request of a runner. @category model */
export interface Gates {
  /** Epoch ms until which `channel`'s quota for `model` is paused (0 when it is not). */
  readonly pausedUntil: (channel: string, model: string) => number
  readonly policy: AttemptPolicy
}

/** The longest pause a single 429 may impose on a quota. */
const maxPauseMillis = 5 * 60_000

/** Build the gates for a runner's channels. @category constructors */
export const make = (
  settings: Readonly<Record<string, GateSettings>>,
): Effect.Effect<Gates, never, RateLimiter.RateLimiter> =>
  Effect.gen(function* () {
    const limiter = yield* RateLimiter.RateLimiter
    // Google's quotas are per model: a pause is keyed by quota and model, so a Pro 429 never blocks Flash.
    const paused = new Map<string, { readonly until: number; readonly since: number }>()
    const semaphores = new Map<string, Semaphore.Semaphore>()
    for (const [name, channel] of Object.entries(settings))
      if (channel.concurrency !== undefined) semaphores.set(name, yield* Semaphore.make(channel.concurrency))
    const quotaOf = (channel: string): string => settings[channel]?.quota ?? channel
    const keyOf = (channel: string, model: string): string => `${quotaOf(channel)}|${model}`
    const pausedUntil = (channel: string, model: string): number => paused.get(keyOf(channel, model))?.until ?? 0

    /** A paused quota is not waited on here: the attempt ends at once (no call), and retry or failover decide. */
    const checkPause = (channel: Channel, model: string, size: string, markers: { readonly hedge?: boolean }) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const until = pausedUntil(channel.name, model)
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
          })
          return Effect.fail(new RateLimited({ channel: channel.name, message, retryAfterMs: until - now }))
        })
      })

    const throttle = (channel: Channel) => {
      const rpm = settings[channel.name]?.rpm
      if (rpm === undefined) return Effect.void
      return limiter
        .consume({
          algorithm: "token-bucket",
          onExceeded: "delay",
          window: "1 minute",
          limit: rpm,
          key: `peel:rpm:${quotaOf(channel.name)}`,
        })
        .pipe(
          Effect.flatMap((result) => (Duration.toMillis(result.delay) > 0 ? Effect.sleep(result.delay) : Effect.void)),
          Effect.catch(() => Effect.void),
        )
    }

    const policy: AttemptPolicy = (call) => (channel, plan, markers) => {
      const called = Effect.flatMap(Clock.currentTimeMillis, (startedAt) =>
        call(channel, plan, markers).pipe(
          Effect.tapError((error) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) => {
              if (error._tag !== "RateLimited" || error.retryAfterMs === undefined || error.daily === true)
                return Effect.void
              const key = keyOf(channel.name, plan.model)
              const current = paused.get(key)
              // A 429 from a call sent before the current pause began says nothing new: it does not extend it.
              if (current !== undefined && current.until > now && startedAt < current.since) return Effect.void
              const until = now + Math.min(error.retryAfterMs, maxPauseMillis)
              if (current === undefined || until > current.until) paused.set(key, { until, since: now })
              return Effect.void
            }),
          ),
        ),
      )
      const gated = checkPause(channel, plan.model, plan.size, markers).pipe(
        Effect.andThen(throttle(channel)),
        Effect.andThen(called),
      )
      const semaphore = semaphores.get(channel.name)
      return semaphore === undefined ? gated : semaphore.withPermits(1)(gated)
    }

    return { pausedUntil, policy }
  })
