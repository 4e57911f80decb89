/**
 * Circuit breaker, an attempt-level policy: one circuit per channel, through `effect/persistence`
 * `CircuitBreaker` over the state's {@link Breakers} store (memory by default; a Redis store shares
 * circuits between processes, and runners given the same state Layer share them). It opens on consecutive
 * failures or on a failure rate over the last calls, rejects calls while open (recorded in the journal as
 * `CircuitOpen`, no call made, so the strategy moves on to the next candidate), and lets one probe
 * through when half-open.
 *
 * Only failures that say something about the channel's health count: unavailable, timeouts, malformed
 * answers, refused credentials. A 429 is about quota, not health: the gate pauses the quota instead. A request's own problem (rejected, blocked, unsupported) and interruption (a hedge
 * that lost) are ignored. Retry sits inside the breaker, so it sees one outcome per channel per request.
 *
 * @since 0.2.0
 */

import type { ChannelError } from "@peel/contract/Errors"
import { Unavailable } from "@peel/contract/Errors"
import { Cause, Clock, Duration, Effect, Exit, type Scope } from "effect"
import { CircuitBreaker } from "effect/persistence"
import { Journal } from "../engine/AttemptJournal.ts"
import { type Breakers as BreakersStore, circuitKey } from "../state/Breakers.ts"
import type { Answer, AttemptPolicy } from "./Call.ts"

/** @category model */
export interface BreakerSettings {
  /** Open after this many consecutive failures. */
  readonly failures?: number | undefined
  /** Or: open when this share of the last `window` calls failed (checked once `window` calls are known). */
  readonly errorRate?: number | undefined
  readonly window?: number | undefined
  /** How long a circuit stays open before one probe is let through. */
  readonly openMillis: number
}

/** @category defaults */
export const defaults: BreakerSettings = { failures: 5, openMillis: 30_000 }

const healthFailures: ReadonlySet<string> = new Set([
  "Unavailable",
  "Timeout",
  "MalformedResponse",
  "NoImage",
  "InsufficientCredits",
  "Unauthorized",
])

const classify = (exit: Exit.Exit<Answer, ChannelError>): CircuitBreaker.Outcome => {
  if (Exit.isSuccess(exit)) return CircuitBreaker.success
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "None") return CircuitBreaker.ignored
  return healthFailures.has(error.value._tag) ? CircuitBreaker.failure() : CircuitBreaker.ignored
}

/** What the breaker knows, shared by every request of a runner. @category model */
export interface Breakers {
  /** Epoch ms when `channel`'s circuit lets calls through again (0 when closed). */
  readonly openUntil: (channel: string) => Effect.Effect<number>
  readonly policy: AttemptPolicy
}

/** Build the breakers for a runner, their circuits in the context's store. @category constructors */
export const make = (settings: BreakerSettings): Effect.Effect<Breakers, never, BreakersStore | Scope.Scope> =>
  Effect.gen(function* () {
    const tripPolicy =
      settings.errorRate !== undefined
        ? CircuitBreaker.rate({
            threshold: settings.errorRate,
            size: settings.window ?? 20,
            minimumCalls: settings.window ?? 20,
          })
        : CircuitBreaker.consecutive(settings.failures ?? 5)
    const breaker = yield* CircuitBreaker.make({ tripPolicy, openDuration: Duration.millis(settings.openMillis) })

    const policy: AttemptPolicy = (call) => (channel, plan, markers) =>
      call(channel, plan, markers).pipe(
        breaker.execute({ key: circuitKey(channel.name), classify }),
        Effect.catchTag("CircuitBreakerError", (rejection) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const reason = rejection.reason
            const retryAfter = reason._tag === "CircuitOpen" ? Duration.toMillis(reason.retryAfter) : 0
            const message =
              reason._tag === "CircuitOpen"
                ? `circuit open for ${retryAfter} ms after repeated failures`
                : reason._tag === "CircuitHalfOpen"
                  ? "circuit half-open: a probe is in flight"
                  : "circuit breaker store unavailable"
            return Journal.use((journal) => {
              journal.record({
                channel: channel.name,
                model: plan.model,
                size: plan.size,
                startedAt: now,
                latencyMs: 0,
                outcome: "CircuitOpen",
                message,
                costUsd: 0,
                ...(markers.hedge === true ? { hedge: true } : {}),
                ...(markers.sameChannel === true ? { sameChannel: true } : {}),
              })
              return Effect.fail(
                new Unavailable({
                  channel: channel.name,
                  message,
                  ...(retryAfter > 0 ? { retryAfterMs: retryAfter } : {}),
                }),
              )
            })
          }),
        ),
      )

    const openUntil = (channel: string) =>
      Effect.zip(Clock.currentTimeMillis, breaker.state(circuitKey(channel))).pipe(
        Effect.map(([now, state]) =>
          state._tag === "Open"
            ? now + Duration.toMillis(state.retryAfter)
            : // A probe in flight: the channel is cooling down for a moment too.
              state._tag === "HalfOpen" && state.probing
              ? now + 1000
              : 0,
        ),
        // A store that cannot answer says nothing: the call itself will meet the breaker.
        Effect.catch(() => Effect.succeed(0)),
      )

    return { openUntil, policy }
  })
