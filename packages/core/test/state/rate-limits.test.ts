/**
 * The client-side rate limit never lets more than `limit` calls start in ANY window (not just in fixed
 * minutes): the service's rule alone, and end to end through the `generate` stage's gate, on the TestClock.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Pipeline, Runner } from "../../src/index.ts"
import * as RateLimits from "../../src/state/RateLimits.ts"
import * as Fixture from "../fixtures/fixture-plugin.ts"

const plugin = join(import.meta.dirname, "..", "fixtures", "fixture-plugin.ts")

/** The most starts found in any half-open window [s, s + window) that begins at a start. */
const busiestWindow = (starts: ReadonlyArray<number>, windowMillis: number): number => {
  const sorted = [...starts].sort((left, right) => left - right)
  let most = 0
  for (let first = 0; first < sorted.length; first++) {
    let last = first
    while (last + 1 < sorted.length && sorted[last + 1]! - sorted[first]! < windowMillis) last++
    most = Math.max(most, last - first + 1)
  }
  return most
}

describe("RateLimits (memory)", () => {
  it.effect("bursts up to the limit, then never more than `limit` starts in any window", () =>
    Effect.gen(function* () {
      const limits = yield* RateLimits.makeMemory
      const starts: Array<number> = []
      // Callers arrive in irregular bursts over five minutes; each starts when the limiter says.
      for (let second = 0; second < 300; second += [1, 7, 13, 2][second % 4]!) {
        yield* TestClock.adjust(`${second === 0 ? 0 : 1000} millis`)
        for (let caller = 0; caller < (second % 3) + 1; caller++) {
          const now = yield* Clock.currentTimeMillis
          const wait = yield* limits.acquire("quota", 10, 60_000)
          expect(wait).toBeGreaterThanOrEqual(0)
          starts.push(now + wait)
        }
      }
      expect(starts.length).toBeGreaterThan(40)
      expect(busiestWindow(starts, 60_000)).toBe(10)
    }),
  )

  it.effect("keys are independent and a slot is free again exactly one window after the start it replaces", () =>
    Effect.gen(function* () {
      const limits = yield* RateLimits.makeMemory
      expect(yield* limits.acquire("a", 2, 60_000)).toBe(0)
      expect(yield* limits.acquire("a", 2, 60_000)).toBe(0)
      expect(yield* limits.acquire("b", 2, 60_000)).toBe(0)
      expect(yield* limits.acquire("a", 2, 60_000)).toBe(60_000)
      expect(yield* limits.acquire("a", 2, 60_000)).toBe(60_000)
      expect(yield* limits.acquire("a", 2, 60_000)).toBe(120_000)
      yield* TestClock.adjust("59999 millis")
      expect(yield* limits.acquire("b", 2, 60_000)).toBe(0)
      expect(yield* limits.acquire("b", 2, 60_000)).toBe(1)
    }),
  )
})

describe("the gate's rpm, end to end", () => {
  it.effect("40 requests at rpm 10: at most 10 calls start in any 60 s, the first 10 at once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const folder = mkdtempSync(join(tmpdir(), "peel-rpm-"))
        const file = join(folder, "pipeline.yaml")
        writeFileSync(
          file,
          [
            "version: 1",
            "name: rpm",
            "channels:",
            `  main: { plugin: ${plugin}, delayMs: 3000 }`,
            "stages:",
            "  - generate: { channels: { main: { rpm: 10 } } }",
          ].join("\n"),
        )
        const pipeline = yield* Pipeline.load(file, { env: {}, today: "2026-11-26" })
        const runner = yield* Runner.make(pipeline, { today: "2026-11-26" })
        const fiber = yield* Effect.forkChild(
          Effect.forEach(
            Array.from({ length: 40 }, (_, index) => index),
            (index) => runner.run({ prompt: `p${index}` }),
            { concurrency: 16 },
          ),
        )
        yield* TestClock.adjust("1 millis")
        expect(Fixture.calls.get("main")?.length).toBe(10)
        for (let step = 0; step < 300; step++) yield* TestClock.adjust("1 second")
        const results = yield* Fiber.join(fiber)
        const starts = results.flatMap((result) => result.attempts.map((attempt) => attempt.startedAt))
        expect(starts).toHaveLength(40)
        expect(busiestWindow(starts, 60_000)).toBe(10)
      }),
    ),
  )
})
