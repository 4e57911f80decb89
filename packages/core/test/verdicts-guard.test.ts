/**
 * Guards for verdicts that every other test let through (issue 17, item 9), written against public
 * behaviour only (a pipeline file, `Runner.make`, `runner.run`, the attempt records a result or a failure
 * carries), so they hold whatever shape the policies and the generate stage take inside:
 *
 * - a 429 is about quota, not health: repeated `RateLimited` answers never open a channel's circuit;
 * - an attempt interrupted after its answer arrived (a hedge won meanwhile, the deadline passed) was
 *   billed by the upstream, so it is priced from that answer, never at $0.
 *
 * TestClock throughout: no real time passes.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { type Attempt, Pipeline, Runner } from "../src/index.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"
import * as Interrupted from "./fixtures/interrupted-answer-plugin.ts"

const today = "2026-11-26"
const plugins = {
  FIXTURE: join(import.meta.dirname, "fixtures", "fixture-plugin.ts"),
  INTERRUPTED: join(import.meta.dirname, "fixtures", "interrupted-answer-plugin.ts"),
}

const runnerFor = (lines: ReadonlyArray<string>, options: Runner.RunnerOptions = {}) =>
  Effect.gen(function* () {
    Fixture.reset()
    Interrupted.answers.clear()
    const file = join(mkdtempSync(join(tmpdir(), "peel-verdicts-")), "pipeline.yaml")
    writeFileSync(
      file,
      ["version: 1", "name: verdicts", ...lines]
        .join("\n")
        .replaceAll("FIXTURE", plugins.FIXTURE)
        .replaceAll("INTERRUPTED", plugins.INTERRUPTED),
    )
    const pipeline = yield* Pipeline.load(file, { env: {}, today })
    return yield* Runner.make(pipeline, { today, ...options })
  })

const calls = (channel: string) => Fixture.calls.get(channel)?.length ?? 0
const outcomes = (attempts: ReadonlyArray<{ readonly channel: string; readonly outcome: string }>) =>
  attempts.map((attempt) => `${attempt.channel}:${attempt.outcome}`)

describe("a 429 is not a health failure", () => {
  it.effect(
    "repeated RateLimited answers leave the circuit closed: the channel is called every time, never CircuitOpen",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const runner = yield* runnerFor([
            "channels:",
            "  main: { plugin: FIXTURE, always: RateLimited }",
            "  backup: { plugin: FIXTURE }",
            "stages:",
            "  - select: { strategy: ordered, channels: [main, backup] }",
            "  - generate: { breaker: { failures: 2, open: 30s }, retry: { attempts: 1 } }",
          ])
          // Five requests, each past the 1 s quota pause the previous 429 asked for: main is asked every time.
          for (let index = 1; index <= 5; index++) {
            const result = yield* runner.run({ prompt: `request ${index}` })
            expect(outcomes(result.attempts), `request ${index}`).toEqual(["main:RateLimited", "backup:ok"])
            yield* TestClock.adjust("2 seconds")
          }
          expect(calls("main")).toBe(5)
          // Within the breaker's 30 s open time: main answers again, and is used at once.
          Fixture.scripts.set("main", ["ok"])
          const recovered = yield* runner.run({ prompt: "request 6" })
          expect(outcomes(recovered.attempts)).toEqual(["main:ok"])
          expect(calls("main")).toBe(6)
        }),
      ),
  )

  it.effect("the same breaker still opens on health failures (the guard above is not vacuous)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* runnerFor([
          "channels:",
          "  main: { plugin: FIXTURE, always: Unavailable }",
          "  backup: { plugin: FIXTURE }",
          "stages:",
          "  - select: { strategy: ordered, channels: [main, backup] }",
          "  - generate: { breaker: { failures: 2, open: 30s }, retry: { attempts: 1 } }",
        ])
        const seen: Array<ReadonlyArray<string>> = []
        for (let index = 1; index <= 3; index++) {
          seen.push(outcomes((yield* runner.run({ prompt: `request ${index}` })).attempts))
          yield* TestClock.adjust("2 seconds")
        }
        expect(seen).toEqual([
          ["main:Unavailable", "backup:ok"],
          ["main:Unavailable", "backup:ok"],
          ["main:CircuitOpen", "backup:ok"],
        ])
      }),
    ),
  )
})

describe("an attempt interrupted after its answer arrived is priced from that answer", () => {
  it.effect(
    "a hedged call interrupted with its answer in hand is priced, like the hedge that finishes in its grace",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const seen: Array<Attempt.Attempt> = []
          const runner = yield* runnerFor(
            [
              "channels:",
              // The answer states what the upstream billed (not the list price): that is what the attempt costs.
              "  first: { plugin: INTERRUPTED, delayMs: 1500, price: 0.134, answerCostUsd: 0.24 }",
              "  second: { plugin: FIXTURE, delayMs: 1000, price: 0.05 }",
              "stages:",
              "  - select: { strategy: ordered, channels: [first, second] }",
              "  - generate: { hedge: { after: 1s, budget: 1 } }",
            ],
            { observers: [{ attempt: (_request, attempt) => seen.push(attempt) }] },
          )
          const fiber = yield* Effect.forkChild(Effect.exit(runner.run({ prompt: "a fox" })))
          // 1 s: the hedge starts on `second`; 1.5 s: `first` answers and is interrupted with the answer in hand.
          yield* TestClock.adjust("1 second")
          expect(calls("second")).toBe(1)
          yield* TestClock.adjust("1 second")
          yield* Fiber.await(fiber)
          expect(Interrupted.answers.get("first")).toBe(1)
          // The upstream billed the image `first` answered: priced as such, never $0. The request ended with
          // `first`; the hedge on `second` finished within its grace (1 s by default) and is priced as billed too.
          expect(seen.map((attempt) => [attempt.channel, attempt.outcome, attempt.costUsd]).sort()).toEqual([
            ["first", "Interrupted", 0.24],
            ["second", "ok", 0.05],
          ])
        }),
      ),
  )

  it.effect("a request interrupted with its only answer in hand: the attempt is recorded at the answer's price", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const seen: Array<Attempt.Attempt> = []
        const runner = yield* runnerFor(
          [
            "channels:",
            // The answer does not state its cost: the attempt is priced from the channel's price list.
            "  only: { plugin: INTERRUPTED, delayMs: 1500, price: 0.134 }",
            "stages:",
            "  - generate: {}",
          ],
          { observers: [{ attempt: (_request, attempt) => seen.push(attempt) }] },
        )
        const fiber = yield* Effect.forkChild(Effect.exit(runner.run({ prompt: "a fox" })))
        yield* TestClock.adjust("1500 millis")
        const exit = yield* Fiber.await(fiber)
        expect(Interrupted.answers.get("only")).toBe(1)
        expect(seen.map((attempt) => [attempt.channel, attempt.outcome, attempt.costUsd])).toEqual([
          ["only", "Interrupted", 0.134],
        ])
        expect(Exit.isSuccess(exit)).toBe(false)
      }),
    ),
  )
})
