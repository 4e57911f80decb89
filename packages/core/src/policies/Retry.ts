/**
 * Retry, an attempt-level policy: on one channel, retry an error whose class says `retryable`, with
 * exponential backoff and full jitter (a uniformly random wait between 0 and the capped exponential
 * step), never sooner than the upstream asked (`RetryInfo.retryDelay`, `Retry-After`, capped), never past
 * the request's deadline and never beyond the request's attempt budget. A per-day quota is not
 * retryable, so it moves straight on to the next channel.
 *
 * Built from Effect's `Schedule`: no hand-written loop. A retry starts no earlier than its delay's end as
 * `Clock.currentTimeMillis` reads it, so a wait for a 429's pause never meets the last milliseconds of it.
 *
 * @since 0.2.0
 */

import type { ChannelError } from "@peel/contract/Errors"
import { Duration, Effect, Random, Schedule } from "effect"
import { Journal } from "../engine/AttemptJournal.ts"
import { sleepUntil } from "../internal/sleepUntil.ts"
import type { AttemptPolicy } from "./Call.ts"

/** @category model */
export interface RetrySettings {
  /** Tries on one channel, the first included. */
  readonly attempts: number
  readonly baseMillis: number
  readonly maxMillis: number
  readonly jitter: "full" | "none"
  /** The longest upstream-requested delay honoured; a longer one moves on to the next channel instead. */
  readonly maxRetryAfterMillis: number
}

/** @category defaults */
export const defaults: RetrySettings = {
  attempts: 3,
  baseMillis: 1000,
  maxMillis: 30_000,
  jitter: "full",
  maxRetryAfterMillis: 60_000,
}

/** The limits every policy of one request draws from. @category model */
export interface RequestLimits {
  /** Epoch ms after which nothing new starts; `undefined` for no deadline. */
  readonly deadlineAt: (journal: { readonly startedAt: number }) => number | undefined
  /** Calls one request may make across channels, retries, hedges and fallbacks. */
  readonly maxCalls: number
}

const retryAfterOf = (error: ChannelError): number | undefined =>
  "retryAfterMs" in error && typeof error.retryAfterMs === "number" ? error.retryAfterMs : undefined

/**
 * The wait before retry number `retry` (1-based) after `error`, or `undefined` to stop: full jitter over
 * `min(max, base·2^(retry-1))`, at least what the upstream asked.
 *
 * @category schedules
 */
export const delayFor = (
  settings: RetrySettings,
  retry: number,
  error: ChannelError,
  random: number,
): number | undefined => {
  const asked = retryAfterOf(error)
  if (asked !== undefined && asked > settings.maxRetryAfterMillis) return undefined
  const step = Math.min(settings.maxMillis, settings.baseMillis * 2 ** (retry - 1))
  const backoff = settings.jitter === "full" ? random * step : step
  return Math.max(backoff, asked ?? 0)
}

/**
 * The retry schedule for one channel call within one request: recurs while the error is retryable, the
 * tries last, the wait fits before the deadline and the request has calls left.
 *
 * @category schedules
 */
export const schedule = (
  settings: RetrySettings,
  limits: RequestLimits,
  journal: { readonly startedAt: number; readonly calls: () => number },
  /** Another candidate can take over: a hang (Timeout) moves on instead of being tried again here. */
  failoverAvailable = false,
) =>
  Schedule.recurs(Math.max(0, settings.attempts - 1)).pipe(
    Schedule.setInputType<ChannelError>(),
    Schedule.modifyDelay(({ input, attempt }) =>
      Effect.map(Random.next, (random) => Duration.millis(delayFor(settings, attempt, input, random) ?? 0)),
    ),
    Schedule.while(({ input, attempt, now, duration }: Schedule.Metadata<number, ChannelError>) => {
      if (!input.retryable) return false
      if (failoverAvailable && input._tag === "Timeout") return false
      if (delayFor(settings, attempt, input, 0.5) === undefined) return false
      if (journal.calls() >= limits.maxCalls) return false
      const deadlineAt = limits.deadlineAt(journal)
      return deadlineAt === undefined || now + Duration.toMillis(duration) < deadlineAt
    }),
  )

/**
 * Before a retry, wait out what is left of its scheduled delay ({@link sleepUntil}: a timer may end the
 * delay a few milliseconds before the clock does). Without it a retry that waited exactly what a 429 asked
 * met its quota's pause still on (the gate's `CoolingDown`), spent a try on it and could end the request
 * with "retry after 1 ms". Nothing to wait on a first try.
 */
const onScheduledTime: Effect.Effect<void> = Effect.withFiber((fiber) => {
  const step = fiber.getRef(Schedule.CurrentMetadata)
  return step.attempt === 0 ? Effect.void : sleepUntil(step.now + Duration.toMillis(step.duration))
})

/** Retry as an attempt-level policy. @category policies */
export const policy =
  (settings: RetrySettings, limits: RequestLimits): AttemptPolicy =>
  (call) =>
  (channel, plan, markers) =>
    Journal.use((journal) =>
      Effect.andThen(onScheduledTime, call(channel, plan, markers)).pipe(
        Effect.retry(
          schedule(
            settings,
            limits,
            { startedAt: journal.startedAt, calls: () => journal.calls() },
            plan.candidates.length > 1,
          ),
        ),
      ),
    )
