import { Clock, Effect } from "effect"

/**
 * Sleep until `Clock.currentTimeMillis` reads at least `at` (epoch ms). `Effect.sleep` alone is not enough
 * for a wait that ends at a point another reader checks against the clock (a quota pause, a breaker's
 * reopening): the live clock sleeps with `setTimeout`, which counts from the event loop's cached time, so on
 * a busy machine it fires a few milliseconds before `Date.now()` reaches the end. Under TestClock, where
 * time moves exactly, this is one sleep.
 */
export const sleepUntil = (at: number): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    now >= at ? Effect.void : Effect.andThen(Effect.sleep(at - now), sleepUntil(at)),
  )
