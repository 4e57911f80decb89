/**
 * Resilience with the TestClock (no real sleeping): retry bounds and jitter, RetryInfo honoured, per-day
 * quota and safety blocks, hedging with the loser interrupted, circuit breakers opening and probing,
 * deadlines, client-side rate limits and shared 429 pauses, fallback to Flash and to a placeholder.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Errors, Pipeline, Runner } from "../src/index.ts"
import * as Retry from "../src/policies/Retry.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const plugin = join(import.meta.dirname, "fixtures", "fixture-plugin.ts")
const today = "2026-11-26"

const runnerFor = (lines: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    Fixture.reset()
    const folder = mkdtempSync(join(tmpdir(), "peel-resilience-"))
    const file = join(folder, "pipeline.yaml")
    writeFileSync(file, ["version: 1", "name: resilience", ...lines].join("\n").replaceAll("FIXTURE", plugin))
    const pipeline = yield* Pipeline.load(file, { env: {}, today })
    return yield* Runner.make(pipeline, { today })
  })

const calls = (channel: string) => Fixture.calls.get(channel)?.length ?? 0
const outcomes = (result: { readonly attempts: ReadonlyArray<{ channel: string; outcome: string }> }) =>
  result.attempts.map((attempt) => `${attempt.channel}:${attempt.outcome}`)
const failureOf = <A>(exit: Exit.Exit<A, Runner.RunFailure>): Runner.RunFailure => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons.find((entry) => entry._tag === "Fail")
  return (reason as unknown as { error: Runner.RunFailure }).error
}

describe("retry schedule", () => {
  const settings = { ...Retry.defaults, baseMillis: 1000, maxMillis: 8000 }
  const unavailable = new Errors.Unavailable({ channel: "c", message: "503" })

  it("full jitter stays within [0, min(max, base·2^n)]", () => {
    for (let retry = 1; retry <= 6; retry++) {
      const step = Math.min(8000, 1000 * 2 ** (retry - 1))
      expect(Retry.delayFor(settings, retry, unavailable, 0)).toBe(0)
      expect(Retry.delayFor(settings, retry, unavailable, 0.999999)).toBeCloseTo(step, 0)
      expect(Retry.delayFor(settings, retry, unavailable, 0.5)).toBe(step / 2)
    }
  })

  it("never waits less than the upstream asked, and gives up on an absurd delay", () => {
    const asked = new Errors.RateLimited({ channel: "c", message: "429", retryAfterMs: 34_000 })
    expect(Retry.delayFor(settings, 1, asked, 0)).toBe(34_000)
    const absurd = new Errors.RateLimited({ channel: "c", message: "429", retryAfterMs: 3_600_000 })
    expect(Retry.delayFor(settings, 1, absurd, 0)).toBeUndefined()
  })
})

describe("generate with policies", () => {
  it.effect("429 → 429 → ok on one channel, waiting what RetryInfo asked", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  main: { plugin: FIXTURE }",
          "stages:",
          "  - generate: { retry: { attempts: 5, base: 100ms, max: 200ms } }",
        ])
        Fixture.scripts.set("main", ["RateLimited", "RateLimited"])
        const fiber = yield* Effect.forkChild(runner.run({ prompt: "a fox" }))
        yield* TestClock.adjust("999 millis")
        expect(calls("main")).toBe(1)
        yield* TestClock.adjust("1 second")
        expect(calls("main")).toBe(2)
        yield* TestClock.adjust("1 second")
        const result = yield* Fiber.join(fiber)
        expect(outcomes(result)).toEqual(["main:RateLimited", "main:RateLimited", "main:ok"])
        expect(result.attempts.map((attempt) => attempt.try)).toEqual([1, 2, 3])
        expect(result.attempts[1]!.startedAt - result.attempts[0]!.startedAt).toBeGreaterThanOrEqual(1000)
        expect(result.latencyMs).toBeGreaterThanOrEqual(2000)
      }),
    ),
  )

  // Node's setTimeout counts from the event loop's cached time, so on a busy machine it can fire before
  // Date.now() reaches the end of the wait: this clock's timers all end a millisecond early.
  const earlyTimers = (clock: Clock.Clock): Clock.Clock => ({
    currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe(),
    currentTimeMillis: clock.currentTimeMillis,
    currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe(),
    currentTimeNanos: clock.currentTimeNanos,
    monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
    monotonicTimeNanos: clock.monotonicTimeNanos,
    sleep: (duration) => {
      const millis = Duration.toMillis(duration)
      return clock.sleep(millis > 1 ? Duration.millis(millis - 1) : duration)
    },
  })
  for (const [waiter, generate] of [
    ["a retry", "retry: { attempts: 2, base: 100ms, max: 200ms }"],
    ["a wait for the only channel to reopen", "timeout: 5s"],
  ] as const)
    it.effect(
      `${waiter} after a 429 starts once the clock has reached the pause's end, though the timer fired early`,
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const runner = yield* runnerFor([
              "channels:",
              "  main: { plugin: FIXTURE }",
              "stages:",
              `  - generate: { ${generate} }`,
            ])
            Fixture.scripts.set("main", ["RateLimited"])
            const early = earlyTimers(yield* Clock.Clock)
            const fiber = yield* Effect.forkChild(
              runner.run({ prompt: "a fox" }).pipe(Effect.provideService(Clock.Clock, early)),
            )
            yield* TestClock.adjust("999 millis")
            expect(calls("main")).toBe(1)
            yield* TestClock.adjust("1 millis")
            const result = yield* Fiber.join(fiber)
            // Not ["main:RateLimited", "main:CoolingDown", …]: no try spent on the pause's last millisecond.
            expect(outcomes(result)).toEqual(["main:RateLimited", "main:ok"])
            expect(result.attempts[1]!.startedAt - result.attempts[0]!.startedAt).toBe(1000)
          }),
        ),
    )

  it.effect("a per-day quota is not retried: the next channel is called at once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  main: { plugin: FIXTURE }",
          "  backup: { plugin: FIXTURE }",
          "stages:",
          "  - generate: { retry: { attempts: 5 } }",
        ])
        Fixture.scripts.set("main", ["Daily"])
        const result = yield* runner.run({ prompt: "a fox" })
        expect(outcomes(result)).toEqual(["main:RateLimited", "backup:ok"])
        expect(result.latencyMs).toBe(0)
      }),
    ),
  )

  it.effect("a safety block is neither retried nor failed over", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  main: { plugin: FIXTURE }",
          "  backup: { plugin: FIXTURE }",
          "stages:",
          "  - generate: { retry: { attempts: 5 } }",
        ])
        Fixture.scripts.set("main", ["ContentBlocked"])
        const failure = failureOf(yield* Effect.exit(runner.run({ prompt: "a fox" })))
        expect(failure.reason._tag).toBe("ContentBlocked")
        expect([calls("main"), calls("backup")]).toEqual([1, 0])
      }),
    ),
  )

  it.effect("503 on every try, then failover to the next channel", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  main: { plugin: FIXTURE, always: Unavailable }",
          "  backup: { plugin: FIXTURE }",
          "stages:",
          "  - generate: { retry: { attempts: 3, base: 1s, max: 1s, jitter: none } }",
        ])
        const fiber = yield* Effect.forkChild(runner.run({ prompt: "a fox" }))
        yield* TestClock.adjust("2 seconds")
        const result = yield* Fiber.join(fiber)
        expect(outcomes(result)).toEqual(["main:Unavailable", "main:Unavailable", "main:Unavailable", "backup:ok"])
      }),
    ),
  )

  it.effect(
    "hedging: a hung channel is raced by the next after the delay; the first image wins, the loser is interrupted",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const runner = yield* runnerFor([
            "channels:",
            "  slow: { plugin: FIXTURE, delayMs: 60000 }",
            "  fast: { plugin: FIXTURE, delayMs: 100 }",
            "stages:",
            "  - generate: { hedge: { after: 2s, budget: 1 } }",
          ])
          const fiber = yield* Effect.forkChild(runner.run({ prompt: "a fox" }))
          yield* TestClock.adjust("1999 millis")
          expect(calls("fast")).toBe(0)
          yield* TestClock.adjust("1 millis")
          expect(calls("fast")).toBe(1)
          yield* TestClock.adjust("100 millis")
          // The loser gets the hedge's grace (1 s by default) to finish; this one is still waiting: aborted.
          yield* TestClock.adjust("1 second")
          const result = yield* Fiber.join(fiber)
          expect(result.channel).toBe("fast")
          const fast = result.attempts.find((attempt) => attempt.channel === "fast")!
          expect([fast.hedge, fast.won]).toEqual([true, true])
          const slow = result.attempts.find((attempt) => attempt.channel === "slow")!
          expect([slow.outcome, slow.costUsd]).toEqual(["Interrupted", 0])
          expect(result.latencyMs).toBe(3100)
        }),
      ),
  )

  it.effect("a losing call whose answer arrives within the grace is priced as billed, not dropped from the books", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  slow: { plugin: FIXTURE, delayMs: 1500, price: 0.134 }",
          "  fast: { plugin: FIXTURE, delayMs: 10, price: 0.05 }",
          "stages:",
          "  - generate: { hedge: { after: 1s, budget: 1, grace: 1s } }",
        ])
        const fiber = yield* Effect.forkChild(runner.run({ prompt: "a fox" }))
        yield* TestClock.adjust("1010 millis")
        yield* TestClock.adjust("490 millis")
        const result = yield* Fiber.join(fiber)
        expect(result.channel).toBe("fast")
        const slow = result.attempts.find((attempt) => attempt.channel === "slow")!
        expect([slow.outcome, slow.costUsd, slow.won]).toEqual(["ok", 0.134, undefined])
        expect(result.costUsd).toBe(0.184)
        expect(result.latencyMs).toBe(1500)
      }),
    ),
  )

  it.effect("no hedge after a deterministic failure, and none beyond the hedge budget", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  slow: { plugin: FIXTURE, delayMs: 5000 }",
          "  fast: { plugin: FIXTURE }",
          "stages:",
          "  - generate: { hedge: { after: 1s, budget: 0 } }",
        ])
        const fiber = yield* Effect.forkChild(runner.run({ prompt: "a fox" }))
        yield* TestClock.adjust("5 seconds")
        const result = yield* Fiber.join(fiber)
        expect(result.channel).toBe("slow")
        expect(calls("fast")).toBe(0)
        Fixture.scripts.set("slow", ["Rejected"])
        const rejected = yield* Effect.forkChild(Effect.exit(runner.run({ prompt: "a fox" })))
        yield* TestClock.adjust("5 seconds")
        const failure = failureOf(yield* Fiber.join(rejected))
        expect(failure.reason._tag).toBe("Rejected")
        expect(calls("fast")).toBe(0)
      }),
    ),
  )

  it.effect("a circuit breaker opens after consecutive failures, is skipped while open, and probes once after", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  flaky: { plugin: FIXTURE, always: Unavailable }",
          "  backup: { plugin: FIXTURE }",
          "stages:",
          "  - generate: { breaker: { failures: 2, open: 30s } }",
        ])
        yield* runner.run({ prompt: "one" })
        yield* runner.run({ prompt: "two" })
        expect(calls("flaky")).toBe(2)
        const third = yield* runner.run({ prompt: "three" })
        expect(outcomes(third)).toEqual(["flaky:CircuitOpen", "backup:ok"])
        expect(calls("flaky")).toBe(2)
        yield* TestClock.adjust("31 seconds")
        Fixture.scripts.set("flaky", ["ok"])
        const probe = yield* runner.run({ prompt: "four" })
        expect(outcomes(probe)).toEqual(["flaky:ok"])
        expect(calls("flaky")).toBe(3)
      }),
    ),
  )

  it.effect("when every candidate is cooling down and one reopens before the deadline, the request waits for it", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  only: { plugin: FIXTURE }",
          "stages:",
          "  - generate: { deadline: 60s }",
        ])
        Fixture.scripts.set("only", ["RateLimited5s"])
        const first = yield* Effect.forkChild(runner.run({ prompt: "one" }))
        yield* TestClock.adjust("1 millis")
        // The quota is paused for 5 s: a second request does not call it either, and both wait.
        const second = yield* Effect.forkChild(runner.run({ prompt: "two" }))
        yield* TestClock.adjust("4998 millis")
        expect(calls("only")).toBe(1)
        yield* TestClock.adjust("1 millis")
        expect(outcomes(yield* Fiber.join(first))).toEqual(["only:RateLimited", "only:ok"])
        expect(outcomes(yield* Fiber.join(second))).toEqual(["only:ok"])
        expect(calls("only")).toBe(3)
      }),
    ),
  )

  it.effect("a 429 pauses the whole quota: a channel sharing it waits too", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  studio: { plugin: FIXTURE }",
          "  vertex: { plugin: FIXTURE }",
          "stages:",
          "  - select: { channels: [studio, vertex] }",
          "  - generate: { channels: { studio: { quota: project }, vertex: { quota: project } } }",
        ])
        Fixture.scripts.set("studio", ["RateLimited5s"])
        const fiber = yield* Effect.forkChild(runner.run({ prompt: "one" }))
        yield* TestClock.adjust("4999 millis")
        expect(calls("vertex")).toBe(0)
        yield* TestClock.adjust("1 millis")
        const result = yield* Fiber.join(fiber)
        // vertex shares the paused quota: not called (CoolingDown); the request waits for the pause to end.
        expect(outcomes(result)).toEqual(["studio:RateLimited", "vertex:CoolingDown", "studio:ok"])
      }),
    ),
  )

  it.effect("a client-side rate limit holds calls under the configured rpm", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  main: { plugin: FIXTURE }",
          "stages:",
          "  - generate: { channels: { main: { rpm: 2 } } }",
        ])
        const fiber = yield* Effect.forkChild(
          Effect.all(
            [1, 2, 3, 4].map((index) => runner.run({ prompt: `p${index}` })),
            { concurrency: "unbounded" },
          ),
        )
        yield* TestClock.adjust("1 millis")
        expect(calls("main")).toBe(2)
        yield* TestClock.adjust("70 seconds")
        yield* Fiber.join(fiber)
        expect(calls("main")).toBe(4)
      }),
    ),
  )

  it.effect("the deadline bounds the whole request", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  slow: { plugin: FIXTURE, delayMs: 60000 }",
          "stages:",
          "  - generate: { deadline: 5s, timeout: 60s }",
        ])
        const fiber = yield* Effect.forkChild(Effect.exit(runner.run({ prompt: "a fox" })))
        yield* TestClock.adjust("5 seconds")
        const failure = failureOf(yield* Fiber.join(fiber))
        expect(failure.reason._tag).toBe("Timeout")
        expect(failure.latencyMs).toBe(5000)
      }),
    ),
  )
})

describe("fallback", () => {
  it.effect(
    "Pro fails everywhere → Flash on its channels; everything fails → a placeholder of the requested pixel size",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const runner = yield* runnerFor([
            "channels:",
            "  pro: { plugin: FIXTURE, models: [gemini-3-pro-image], always: Unavailable }",
            "  flash: { plugin: FIXTURE, models: [gemini-2.5-flash-image] }",
            "stages:",
            "  - fallback:",
            "      - { model: gemini-2.5-flash-image, channels: [flash] }",
            "      - { placeholder: generated }",
            "  - select: { channels: [pro] }",
            "  - generate: {}",
          ])
          const flash = yield* runner.run({ prompt: "a fox", size: "2K", aspectRatio: "16:9" })
          expect([flash.channel, flash.model, flash.placeholder]).toEqual(["flash", "gemini-2.5-flash-image", false])
          expect(outcomes(flash)).toEqual(["pro:Unavailable", "flash:ok"])
          expect(flash.attempts[1]!.fallback).toBe(true)

          Fixture.scripts.set("flash", ["Unavailable"])
          const placeholder = yield* runner.run({ prompt: "a fox", size: "2K", aspectRatio: "16:9" })
          expect([placeholder.placeholder, placeholder.costUsd, placeholder.channel]).toEqual([true, 0, "placeholder"])
          expect([placeholder.width, placeholder.height, placeholder.mimeType]).toEqual([2752, 1536, "image/png"])
          expect(outcomes(placeholder)).toEqual(["pro:Unavailable", "flash:Unavailable", "placeholder:ok"])

          Fixture.scripts.set("pro", ["ContentBlocked"])
          const blocked = failureOf(yield* Effect.exit(runner.run({ prompt: "a fox" })))
          expect(blocked.reason._tag).toBe("ContentBlocked")
        }),
      ),
  )
})
