/**
 * The hot-path attempt timeout (`internal/timeout.ts`): same meaning as `Effect.timeoutOrElse` — the
 * answer when it comes first; otherwise the effect is interrupted (its finalizers run, so an HTTP call is
 * aborted) and the fallback runs; interrupting the caller interrupts the effect. Under TestClock it is
 * Effect's own, so tests that adjust the clock keep working.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { raceAfter, timeoutOrElse } from "../src/internal/timeout.ts"

const fallback = () => Effect.succeed("timed out" as const)

describe("timeoutOrElse", () => {
  it.live("returns the answer that comes first (synchronous or not)", () =>
    Effect.gen(function* () {
      expect(yield* timeoutOrElse(Effect.succeed("now"), 60_000, fallback)).toBe("now")
      expect(yield* timeoutOrElse(Effect.as(Effect.yieldNow, "later"), 60_000, fallback)).toBe("later")
      const failed = yield* Effect.exit(timeoutOrElse(Effect.fail("boom"), 60_000, fallback))
      expect(failed).toEqual(Exit.fail("boom"))
    }),
  )

  it.live("interrupts an effect that does not answer in time, then runs the fallback", () =>
    Effect.gen(function* () {
      let interrupted = false
      const hang = Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => (interrupted = true))))
      expect(yield* timeoutOrElse(hang, 1, fallback)).toBe("timed out")
      expect(interrupted).toBe(true)
    }),
  )

  it.live("interrupting the caller interrupts the effect", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const stopped = yield* Deferred.make<void>()
      const hang = Deferred.succeed(started, undefined).pipe(
        Effect.andThen(Effect.never),
        Effect.onInterrupt(() => Deferred.succeed(stopped, undefined)),
      )
      const fiber = yield* Effect.forkChild(timeoutOrElse(hang, 60_000, fallback))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect(yield* Deferred.isDone(stopped)).toBe(true)
    }),
  )

  it.effect("follows the TestClock", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(timeoutOrElse(Effect.never, 30_000, fallback))
      yield* TestClock.adjust(29_999)
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust(1)
      expect(yield* Fiber.join(fiber)).toBe("timed out")
    }),
  )

  it.live("raceAfter: the answer that comes first; otherwise after() decides, and the effect ends with the race", () =>
    Effect.gen(function* () {
      const giveUp = () => Effect.fail("gave up" as const)
      expect(yield* raceAfter(Effect.succeed("now"), 60_000, giveUp)).toBe("now")
      expect(yield* raceAfter(Effect.as(Effect.sleep(20), "late but kept"), 1, () => Effect.never)).toBe(
        "late but kept",
      )
      let interrupted = false
      const hang = Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => (interrupted = true))))
      expect(yield* Effect.exit(raceAfter(hang, 1, giveUp))).toEqual(Exit.fail("gave up"))
      expect(interrupted).toBe(true)
    }),
  )

  it.effect("raceAfter follows the TestClock", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(raceAfter(Effect.never, 1000, () => Effect.fail("gave up" as const)))
      yield* TestClock.adjust(999)
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust(1)
      expect(yield* Effect.exit(Fiber.join(fiber))).toEqual(Exit.fail("gave up"))
    }),
  )
})
