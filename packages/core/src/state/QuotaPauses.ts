/**
 * Quota pauses: a 429 that says how long to wait (RetryInfo, Retry-After) pauses a quota for one model —
 * every channel drawing on it, not just the request that met it. A pause expires by itself at its end (a
 * network store sets it with a TTL). Only a 429 from a call sent after the current pause began may extend
 * it: a call already in flight when the pause started says nothing new ({@link nextPause}).
 *
 * @since 0.4.0
 */
import { Clock, Context, Effect, Layer } from "effect"

/** A pause in force: until when, and since when (epoch ms). @category model */
export interface Pause {
  readonly until: number
  readonly since: number
}

/** @category model */
export interface QuotaPausesShape {
  /** Epoch ms until which `key` is paused; 0 when it is not. */
  readonly pausedUntil: (key: string) => Effect.Effect<number>
  /**
   * A 429 from a call sent at `sentAt` asked to wait until `until`: pause `key` (or extend the pause) by
   * {@link nextPause}. Returns the pause's end afterwards (0 when none). Atomic.
   */
  readonly pause: (key: string, options: { readonly until: number; readonly sentAt: number }) => Effect.Effect<number>
}

/** @category services */
export class QuotaPauses extends Context.Service<QuotaPauses, QuotaPausesShape>()("@peel/core/state/QuotaPauses") {}

/**
 * The rule every implementation applies: the pause after a 429 from a call sent at `sentAt` asking to wait
 * until `until`, seen at `now`; `undefined` to keep `current` as it is.
 *
 * @category rules
 */
export const nextPause = (
  current: Pause | undefined,
  now: number,
  sentAt: number,
  until: number,
): Pause | undefined => {
  if (until <= now) return undefined
  if (current === undefined || current.until <= now) return { until, since: now }
  if (sentAt < current.since) return undefined
  return until > current.until ? { until, since: now } : undefined
}

/** One process's quota pauses, in memory. @category constructors */
export const makeMemory: Effect.Effect<QuotaPausesShape> = Effect.sync(() => {
  const pauses = new Map<string, Pause>()
  const live = (key: string, now: number): Pause | undefined => {
    const pause = pauses.get(key)
    if (pause !== undefined && pause.until <= now) pauses.delete(key)
    return pause !== undefined && pause.until > now ? pause : undefined
  }
  return {
    pausedUntil: (key) => Effect.map(Clock.currentTimeMillis, (now) => live(key, now)?.until ?? 0),
    pause: (key, { until, sentAt }) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const current = live(key, now)
        const next = nextPause(current, now, sentAt, until)
        if (next !== undefined) pauses.set(key, next)
        return (next ?? current)?.until ?? 0
      }),
  }
})

/** @category layers */
export const layerMemory: Layer.Layer<QuotaPauses> = Layer.effect(QuotaPauses, makeMemory)
