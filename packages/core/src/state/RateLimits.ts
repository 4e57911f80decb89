/**
 * Client-side rate limits: at most `limit` calls START in any `window` (a sliding window log, not a token
 * bucket: a token bucket lets a full bucket out at once and then refills, so one window can see about
 * twice the limit, and an upstream that counts any 60 s answers 429).
 *
 * {@link RateLimitsShape.acquire} reserves the earliest start time that keeps the rule and returns how long
 * the caller must wait for it; the reservation stands whether or not the caller then starts (a caller that
 * is interrupted while waiting wastes its slot: conservative, never over the limit). A network store
 * implements it atomically (a Redis sorted set and one script, a row lock in Postgres) with
 * {@link nextStart} as the rule; entries older than the window expire by themselves.
 *
 * {@link RateLimitsShape.tryAcquire} is the form for a caller that refuses instead of waiting (the gateway's
 * per-key rpm answers 429 with `Retry-After`): it takes a start only when one is free now, and otherwise
 * reserves nothing and says how long until one is. Same rule, same log, same atomicity.
 *
 * @since 0.4.0
 */
import { Clock, Context, Effect, Layer } from "effect"

/** @category model */
export interface RateLimitsShape {
  /**
   * Reserve a start for `key` so that no more than `limit` starts fall within any `windowMillis`
   * (two starts are in one window when they are less than `windowMillis` apart). Returns the ms to wait
   * before starting (0: start now). Atomic.
   */
  readonly acquire: (key: string, limit: number, windowMillis: number) => Effect.Effect<number>
  /**
   * Take a start for `key` now if one is free under the same rule; otherwise take nothing. Returns 0 when
   * the start was taken, or the ms until one would be free (`Infinity` for a limit of 0). Atomic: of N
   * concurrent callers, at most the free starts' worth get 0.
   */
  readonly tryAcquire: (key: string, limit: number, windowMillis: number) => Effect.Effect<number>
}

/** @category services */
export class RateLimits extends Context.Service<RateLimits, RateLimitsShape>()("@peel/core/state/RateLimits") {}

/**
 * The rule every implementation applies: given the key's reserved starts (ascending, those still within a
 * window of `now`), the earliest start at or after `now` and after the last reservation that keeps at most
 * `limit` starts in any window.
 *
 * @category rules
 */
export const nextStart = (log: ReadonlyArray<number>, now: number, limit: number, windowMillis: number): number => {
  const last = log.length === 0 ? now : Math.max(now, log[log.length - 1]!)
  if (limit <= 0) return Number.POSITIVE_INFINITY
  return log.length >= limit ? Math.max(last, log[log.length - limit]! + windowMillis) : last
}

/** Drop the starts that can no longer share a window with any start at or after `now`. @category rules */
export const prune = (log: Array<number>, now: number, windowMillis: number): void => {
  let drop = 0
  while (drop < log.length && log[drop]! <= now - windowMillis) drop++
  if (drop > 0) log.splice(0, drop)
}

/** One process's rate limits, in memory. @category constructors */
export const makeMemory: Effect.Effect<RateLimitsShape> = Effect.sync(() => {
  const logs = new Map<string, Array<number>>()
  return {
    acquire: (key, limit, windowMillis) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const log = logs.get(key) ?? []
        prune(log, now, windowMillis)
        const at = nextStart(log, now, limit, windowMillis)
        if (Number.isFinite(at)) log.push(at)
        if (log.length === 0) logs.delete(key)
        else logs.set(key, log)
        return at - now
      }),
    tryAcquire: (key, limit, windowMillis) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const log = logs.get(key) ?? []
        prune(log, now, windowMillis)
        const at = nextStart(log, now, limit, windowMillis)
        if (at === now) log.push(now)
        if (log.length === 0) logs.delete(key)
        else logs.set(key, log)
        return at - now
      }),
  }
})

/** @category layers */
export const layerMemory: Layer.Layer<RateLimits> = Layer.effect(RateLimits, makeMemory)
