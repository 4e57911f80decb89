/**
 * Tail and quota, on the TestClock: a hedge goes to the SAME channel when no later candidate is ready
 * (counted against the budget, marked in the journal), attempt timeouts adapt to observed latency once
 * enough calls are known (bounded by the configured timeout), and a 429 never opens a circuit.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Pipeline, Runner } from "../../src/index.ts"
import * as Fixture from "../fixtures/fixture-plugin.ts"

const plugin = join(import.meta.dirname, "..", "fixtures", "fixture-plugin.ts")
const today = "2026-11-26"

const runnerFor = (lines: ReadonlyArray<string>, options: Runner.RunnerOptions = {}) =>
  Effect.gen(function* () {
    const folder = mkdtempSync(join(tmpdir(), "peel-tail-"))
    const file = join(folder, "pipeline.yaml")
    writeFileSync(file, ["version: 1", "name: tail", ...lines].join("\n").replaceAll("FIXTURE", plugin))
    const pipeline = yield* Pipeline.load(file, { env: {}, today })
    return yield* Runner.make(pipeline, { today, ...options })
  })

const calls = (channel: string) => Fixture.calls.get(channel)?.length ?? 0
const outcomes = (result: { readonly attempts: ReadonlyArray<{ channel: string; outcome: string }> }) =>
  result.attempts.map((attempt) => `${attempt.channel}:${attempt.outcome}`)
const failureOf = <A>(exit: Exit.Exit<A, Runner.RunFailure>): Runner.RunFailure => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons.find((entry) => entry._tag === "Fail")
  return (reason as unknown as { error: Runner.RunFailure }).error
}

describe("same-channel hedging", () => {
  it.effect("the only candidate hangs: after the hedge delay a second call goes to the same channel and wins", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const runner = yield* runnerFor([
          "channels:",
          "  only: { plugin: FIXTURE }",
          "stages:",
          "  - generate: { timeout: 120s, hedge: { after: 2s, budget: 1 } }",
        ])
        Fixture.scripts.set("only", ["Hang", "ok"])
        const fiber = yield* Effect.forkChild(runner.run({ prompt: "a fox" }))
        yield* TestClock.adjust("1999 millis")
        expect(calls("only")).toBe(1)
        yield* TestClock.adjust("1 millis")
        expect(calls("only")).toBe(2)
        // The loser gets the hedge's grace (1 s by default) to finish before it is aborted.
        yield* TestClock.adjust("1 second")
        const result = yield* Fiber.join(fiber)
        expect(result.latencyMs).toBe(3000)
        const won = result.attempts.find((attempt) => attempt.won === true)!
        expect([won.channel, won.hedge, won.sameChannel]).toEqual(["only", true, true])
        expect(outcomes(result).sort()).toEqual(["only:Interrupted", "only:ok"])
      }),
    ),
  )

  it.effect("when the next candidate's quota is paused, the hedge goes to the channel already called", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const runner = yield* runnerFor([
          "channels:",
          "  a: { plugin: FIXTURE, delayMs: 1000 }",
          "  b: { plugin: FIXTURE }",
          "stages:",
          "  - select: { channels: [a, b] }",
          "  - generate: { timeout: 120s, hedge: { after: 2s, budget: 1 } }",
        ])
        // Request 1: a fails after 1 s, b answers 429 (retry in 5 s): b's quota is paused until 6 s.
        Fixture.scripts.set("a", ["Unavailable", "Hang", "ok"])
        Fixture.scripts.set("b", ["RateLimited5s"])
        const first = yield* Effect.forkChild(Effect.exit(runner.run({ prompt: "one" })))
        yield* TestClock.adjust("1 second")
        expect(outcomes(failureOf(yield* Fiber.join(first)))).toEqual(["a:Unavailable", "b:RateLimited"])
        // Request 2 at 1 s: a hangs; at 3 s b is still paused, so the hedge calls a again (answers in 1 s).
        const second = yield* Effect.forkChild(runner.run({ prompt: "two" }))
        yield* TestClock.adjust("2 seconds")
        expect([calls("a"), calls("b")]).toEqual([3, 1])
        yield* TestClock.adjust("2 seconds")
        const result = yield* Fiber.join(second)
        expect(result.channel).toBe("a")
        const won = result.attempts.find((attempt) => attempt.won === true)!
        expect([won.channel, won.hedge, won.sameChannel]).toEqual(["a", true, true])
        expect(outcomes(result).sort()).toEqual(["a:Interrupted", "a:ok"])
      }),
    ),
  )

  it.effect("the hedge delay counts from the current call: a retry after a 429 restarts it", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const runner = yield* runnerFor([
          "channels:",
          "  a: { plugin: FIXTURE }",
          "  b: { plugin: FIXTURE }",
          "stages:",
          "  - select: { channels: [a, b] }",
          "  - generate: { timeout: 120s, retry: { attempts: 3 }, hedge: { after: 2s, budget: 1 } }",
        ])
        // a: 429 asking for 1 s, then (the retry at 1 s) a hang; the hedge is due 2 s after the retry began.
        Fixture.scripts.set("a", ["RateLimited", "Hang"])
        const fiber = yield* Effect.forkChild(runner.run({ prompt: "a fox" }))
        yield* TestClock.adjust("1 second")
        expect(calls("a")).toBe(2)
        yield* TestClock.adjust("1999 millis")
        expect(calls("b")).toBe(0)
        yield* TestClock.adjust("1 millis")
        expect(calls("b")).toBe(1)
        yield* TestClock.adjust("1 second")
        const result = yield* Fiber.join(fiber)
        expect(result.channel).toBe("b")
        expect(result.attempts.find((attempt) => attempt.won === true)?.hedge).toBe(true)
      }),
    ),
  )

  it.effect("a same-channel hedge draws on the hedge budget: none when the budget is spent", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const runner = yield* runnerFor([
          "channels:",
          "  only: { plugin: FIXTURE, delayMs: 5000 }",
          "stages:",
          "  - generate: { timeout: 120s, hedge: { after: 1s, budget: 0 } }",
        ])
        const fiber = yield* Effect.forkChild(runner.run({ prompt: "a fox" }))
        yield* TestClock.adjust("5 seconds")
        const result = yield* Fiber.join(fiber)
        expect(outcomes(result)).toEqual(["only:ok"])
        expect(calls("only")).toBe(1)
      }),
    ),
  )

  it.effect(
    "a hedge the budget refused is asked for again every second, and starts once other calls have freed it",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          Fixture.reset()
          const runner = yield* runnerFor([
            "channels:",
            "  only: { plugin: FIXTURE, delayMs: 100 }",
            "stages:",
            "  - generate: { timeout: 120s, hedge: { after: 1s, budget: 0.1 } }",
          ])
          // Two calls hang. At 1 s both are due a hedge: the first is allowed (one always starts a window),
          // the second is not (2 hedges need 10 calls at a share of 0.1).
          Fixture.scripts.set("only", ["Hang", "Hang"])
          const first = yield* Effect.forkChild(runner.run({ prompt: "one" }))
          const second = yield* Effect.forkChild(runner.run({ prompt: "two" }))
          yield* TestClock.adjust("1 second")
          expect(calls("only")).toBe(3)
          // Eight quick requests make 11 calls in the window: room for a second hedge.
          const quick = yield* Effect.forkChild(
            Effect.forEach(
              Array.from({ length: 8 }, (_, index) => index),
              (index) => runner.run({ prompt: `quick ${index}` }),
              { concurrency: "unbounded" },
            ),
          )
          yield* TestClock.adjust("500 millis")
          yield* Fiber.join(quick)
          expect(calls("only")).toBe(11)
          // At 2 s the refused hedge asks again and starts; both requests end with the hedge's image.
          yield* TestClock.adjust("500 millis")
          expect(calls("only")).toBe(12)
          yield* TestClock.adjust("2 seconds")
          expect(first.pollUnsafe()).toBeDefined()
          expect(second.pollUnsafe()).toBeDefined()
          const results = [yield* Fiber.join(first), yield* Fiber.join(second)]
          const latencies = results.map((result) => result.latencyMs).sort((left, right) => left - right)
          expect(latencies).toEqual([2100, 3100])
          for (const result of results) {
            const won = result.attempts.find((attempt) => attempt.won === true)!
            expect([won.hedge, won.sameChannel]).toEqual([true, true])
          }
        }),
      ),
  )

  it.effect("hedge.sameChannel: false keeps the old rule (no hedge after the last candidate)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const runner = yield* runnerFor([
          "channels:",
          "  only: { plugin: FIXTURE, delayMs: 5000 }",
          "stages:",
          "  - generate: { timeout: 120s, hedge: { after: 1s, budget: 1, sameChannel: false } }",
        ])
        const fiber = yield* Effect.forkChild(runner.run({ prompt: "a fox" }))
        yield* TestClock.adjust("5 seconds")
        expect(outcomes(yield* Fiber.join(fiber))).toEqual(["only:ok"])
      }),
    ),
  )
})

describe("adaptive attempt timeouts", () => {
  /** 20 calls of 1 s each, one after the other: enough samples for a p99 (1 s). */
  const warmUp = (runner: Runner.Runner["Service"]) =>
    Effect.gen(function* () {
      for (let index = 0; index < 20; index++) {
        const fiber = yield* Effect.forkChild(runner.run({ prompt: `warm ${index}` }))
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
      }
    })

  const hangAfterWarmUp = (generate: string) =>
    Effect.gen(function* () {
      Fixture.reset()
      const runner = yield* runnerFor([
        "channels:",
        "  main: { plugin: FIXTURE, delayMs: 1000 }",
        "stages:",
        `  - generate: ${generate}`,
      ])
      yield* warmUp(runner)
      Fixture.scripts.set("main", ["Hang"])
      const fiber = yield* Effect.forkChild(Effect.exit(runner.run({ prompt: "hang" })))
      yield* TestClock.adjust("120 seconds")
      return failureOf(yield* Fiber.join(fiber))
    })

  it.effect("after 20 calls of 1 s, a hang times out at the 10 s floor, not the configured 120 s", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const failure = yield* hangAfterWarmUp("{ timeout: 120s }")
        expect(failure.reason._tag).toBe("Timeout")
        expect(failure.latencyMs).toBe(10_000)
      }),
    ),
  )

  it.effect("factor × p99 above the floor; never beyond the configured timeout; off when asked", () =>
    Effect.scoped(
      Effect.gen(function* () {
        expect((yield* hangAfterWarmUp("{ timeout: 120s, adaptiveTimeout: { factor: 4, floor: 1s } }")).latencyMs).toBe(
          4000,
        )
        expect((yield* hangAfterWarmUp("{ timeout: 3s, adaptiveTimeout: { factor: 4, floor: 1s } }")).latencyMs).toBe(
          3000,
        )
        expect((yield* hangAfterWarmUp("{ timeout: 60s, adaptiveTimeout: false }")).latencyMs).toBe(60_000)
      }),
    ),
  )

  it.effect("a hang that began before the latency was known is cut once it is", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const runner = yield* runnerFor([
          "channels:",
          "  main: { plugin: FIXTURE, delayMs: 1000 }",
          "stages:",
          "  - generate: { timeout: 120s }",
        ])
        Fixture.scripts.set("main", ["Hang"])
        const hung = yield* Effect.forkChild(Effect.exit(runner.run({ prompt: "hang" })))
        yield* TestClock.adjust("1 millis")
        // Twenty calls of 1 s finish beside it: from then on the channel's attempts get 10 s (the floor).
        const others = yield* Effect.forkChild(
          Effect.forEach(
            Array.from({ length: 20 }, (_, index) => index),
            (index) => runner.run({ prompt: `p${index}` }),
            { concurrency: "unbounded" },
          ),
        )
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(others)
        yield* TestClock.adjust("9 seconds")
        const failure = failureOf(yield* Fiber.join(hung))
        expect(failure.reason._tag).toBe("Timeout")
        expect(failure.latencyMs).toBe(10_000)
      }),
    ),
  )

  it.effect("a channel that has hardly answered is held to the model's latency on the other channels", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const runner = yield* runnerFor([
          "channels:",
          "  a: { plugin: FIXTURE, delayMs: 1000 }",
          "  b: { plugin: FIXTURE, delayMs: 1000 }",
          "stages:",
          "  - select: { channels: [b, a] }",
          "  - generate: { timeout: 120s, retry: { attempts: 1 } }",
        ])
        // Twenty calls of 1 s, all on b: a has no latency of its own.
        yield* warmUp(runner)
        expect(calls("a")).toBe(0)
        Fixture.scripts.set("b", ["Unavailable"])
        Fixture.scripts.set("a", ["Hang"])
        const fiber = yield* Effect.forkChild(Effect.exit(runner.run({ prompt: "hang" })))
        yield* TestClock.adjust("120 seconds")
        const failure = failureOf(yield* Fiber.join(fiber))
        const hung = failure.attempts.find((attempt) => attempt.channel === "a")!
        expect([hung.outcome, hung.latencyMs]).toEqual(["Timeout", 10_000])
      }),
    ),
  )

  it.effect("before enough calls are known, the configured timeout applies", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const runner = yield* runnerFor([
          "channels:",
          "  main: { plugin: FIXTURE, delayMs: 1000 }",
          "stages:",
          "  - generate: { timeout: 30s }",
        ])
        Fixture.scripts.set("main", ["Hang"])
        const fiber = yield* Effect.forkChild(Effect.exit(runner.run({ prompt: "hang" })))
        yield* TestClock.adjust("30 seconds")
        expect(failureOf(yield* Fiber.join(fiber)).latencyMs).toBe(30_000)
      }),
    ),
  )
})

describe("breakers and quota", () => {
  it.effect("repeated 429s leave the circuit closed: no CircuitOpen, the channel answers when the quota is back", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const runner = yield* runnerFor([
          "channels:",
          "  main: { plugin: FIXTURE }",
          "stages:",
          "  - generate: { breaker: { failures: 2, open: 30s } }",
        ])
        // Each request meets two 429s (each pausing the quota for 1 s), waits them out and gets its image:
        // six 429s in a row never open a circuit that opens after two failures.
        for (let index = 0; index < 3; index++) {
          Fixture.scripts.set("main", ["RateLimited", "RateLimited"])
          const fiber = yield* Effect.forkChild(runner.run({ prompt: `p${index}` }))
          yield* TestClock.adjust("5 seconds")
          expect(outcomes(yield* Fiber.join(fiber))).toEqual(["main:RateLimited", "main:RateLimited", "main:ok"])
        }
      }),
    ),
  )
})
