/**
 * The channel gate, an attempt-level policy that keeps Peel from causing the 429s it would then retry:
 *
 * - a client-side rate limit per channel (requests per minute), through `effect/persistence`
 *   `RateLimiter` (memory store here; a Redis store shares it between processes);
 * - channels that draw on one upstream quota (AI Studio and Vertex on one project, two channels with
 *   one key) name the same `quota`, and share its limit and its pause;
 * - a 429 that says how long to wait pauses the whole quota, not just one request: every call to it
 *   waits out the pause (if the request's deadline allows; otherwise it moves on at once);
 * - a per-channel concurrency cap.
 *
 * @since 0.2.0
 */
import { Clock, Duration, Effect, Semaphore } from "effect"
import { RateLimiter } from "effect/persistence"
import type { Channel } from "../Channel.ts"
import { RateLimited } from "../Errors.ts"
import { Journal } from "../Journal.ts"
import type { AttemptPolicy } from "../stages/generate.ts"
import type { RequestLimits } from "./Retry.ts"

/** Limits for one channel. @category model */
export interface GateSettings {
  readonly rpm?: number | undefined
  readonly concurrency?: number | undefined
  /** Channels naming the same quota share its rate limit and its pauses. */
  readonly quota?: string | undefined
}

/** What the gate knows, shared by every request of a runner. @category model */
export interface Gates {
  /** Epoch ms until which `channel`'s quota is paused (0 when it is not). */
  readonly pausedUntil: (channel: string) => number
  readonly policy: AttemptPolicy
}

/** The longest pause a single 429 may impose on a quota. */
const maxPauseMillis = 5 * 60_000

/** Build the gates for a runner's channels. @category constructors */
export const make = (
  settings: Readonly<Record<string, GateSettings>>,
  limits: RequestLimits,
): Effect.Effect<Gates, never, RateLimiter.RateLimiter> =>
  Effect.gen(function* () {
    const limiter = yield* RateLimiter.RateLimiter
    const paused = new Map<string, number>()
    const semaphores = new Map<string, Semaphore.Semaphore>()
    for (const [name, channel] of Object.entries(settings))
      if (channel.concurrency !== undefined) semaphores.set(name, yield* Semaphore.make(channel.concurrency))
    const quotaOf = (channel: string): string => settings[channel]?.quota ?? channel
    const pausedUntil = (channel: string): number => paused.get(quotaOf(channel)) ?? 0

    const waitForPause = (channel: Channel, deadlineAt: number | undefined) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const until = pausedUntil(channel.name)
        if (until <= now) return Effect.void
        if (deadlineAt !== undefined && until >= deadlineAt)
          return Effect.fail(
            new RateLimited({
              channel: channel.name,
              message: `quota ${quotaOf(channel.name)} is paused for ${until - now} ms after a 429; past this request's deadline`,
              retryAfterMs: until - now,
            }),
          )
        return Effect.sleep(until - now)
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

    const policy: AttemptPolicy = (call) => (channel, plan, markers) =>
      Journal.use((journal) => {
        const deadlineAt = limits.deadlineAt(journal)
        const gated = waitForPause(channel, deadlineAt).pipe(
          Effect.andThen(throttle(channel)),
          Effect.andThen(call(channel, plan, markers)),
          Effect.tapError((error) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) => {
              if (error._tag === "RateLimited" && error.retryAfterMs !== undefined && error.daily !== true) {
                const until = now + Math.min(error.retryAfterMs, maxPauseMillis)
                const quota = quotaOf(channel.name)
                if (until > (paused.get(quota) ?? 0)) paused.set(quota, until)
              }
              return Effect.void
            }),
          ),
        )
        const semaphore = semaphores.get(channel.name)
        return semaphore === undefined ? gated : semaphore.withPermits(1)(gated)
      })

    return { pausedUntil, policy }
  })
