/**
 * Every selection strategy: ordered (as listed), cheapest (expected price for this request), fastest
 * (observed latency, unmeasured channels first, failures penalised); each skips channels that cannot
 * serve the request.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { afterEach, describe, expect, it } from "vitest"
import { Latency, Pipeline, Runner } from "../src/index.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const plugin = join(import.meta.dirname, "fixtures", "fixture-plugin.ts")

const pipeline = (strategy: string) => {
  const folder = mkdtempSync(join(tmpdir(), "peel-select-"))
  const file = join(folder, "pipeline.yaml")
  writeFileSync(
    file,
    [
      "version: 1",
      "name: select-test",
      "channels:",
      `  slow: { plugin: ${plugin}, price: 0.05, delayMs: 80 }`,
      `  small: { plugin: ${plugin}, price: 0.01, sizes: [1K], delayMs: 1 }`,
      `  fast: { plugin: ${plugin}, price: 0.134, delayMs: 5 }`,
      "stages:",
      "  - resolution: { hero: 4K, default: 1K }",
      `  - select: { strategy: ${strategy}, channels: [slow, small, fast] }`,
      "  - generate: { timeout: 5s }",
    ].join("\n"),
  )
  return file
}

const withRunner = <A, E>(file: string, use: (runner: Runner.RunnerShape) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* Runner.make(yield* Pipeline.load(file, { env: {} }))
        return yield* use(runner)
      }),
    ),
  )

afterEach(() => Fixture.reset())

describe("select strategies", () => {
  it("ordered keeps the listed order; channels that cannot serve the request are left out", async () => {
    const [small, hero] = await withRunner(pipeline("ordered"), (runner) =>
      Effect.all([runner.plan({ prompt: "x" }), runner.plan({ prompt: "x", use: "hero" })]),
    )
    expect(small.candidates).toEqual(["slow", "small", "fast"])
    expect(hero.candidates).toEqual(["slow", "fast"])
  })

  it("cheapest orders by each channel's expected price for this request", async () => {
    const [small, hero] = await withRunner(pipeline("cheapest"), (runner) =>
      Effect.all([runner.plan({ prompt: "x" }), runner.plan({ prompt: "x", use: "hero" })]),
    )
    expect(small.candidates).toEqual(["small", "slow", "fast"])
    expect(hero.candidates).toEqual(["slow", "fast"])
  })

  it("fastest measures unmeasured channels first, then orders by observed latency", async () => {
    // On the TestClock: each channel's latency is exactly its delay (80 ms, 5 ms), whatever the machine does.
    const channels = await withRunner(pipeline("fastest"), (runner) =>
      Effect.gen(function* () {
        const used: Array<string> = []
        const latencies: Array<number> = []
        for (let index = 0; index < 5; index++) {
          const fiber = yield* Effect.forkChild(runner.run({ prompt: `hero ${index}`, use: "hero" }))
          yield* TestClock.adjust("100 millis")
          const result = yield* Fiber.join(fiber)
          used.push(result.channel)
          latencies.push(result.latencyMs)
        }
        const plan = yield* runner.plan({ prompt: "x", use: "hero" })
        return { used, latencies, candidates: plan.candidates }
      }).pipe(Effect.provide(TestClock.layer())),
    )
    // slow (listed first, unmeasured), then fast (unmeasured), then fast every time.
    expect(channels.used).toEqual(["slow", "fast", "fast", "fast", "fast"])
    expect(channels.latencies).toEqual([80, 5, 5, 5, 5])
    expect(channels.candidates).toEqual(["fast", "slow"])
  })

  it("fastest penalises failures: a channel answering 503 quickly does not look fast", () => {
    const tracker = Latency.make()
    const attempt = (channel: string, latencyMs: number, outcome = "ok") => ({
      channel,
      model: "m",
      size: "2K",
      startedAt: 0,
      latencyMs,
      outcome,
      costUsd: 0,
    })
    tracker.observe(attempt("a", 100))
    tracker.observe(attempt("b", 150))
    tracker.observe(attempt("a", 5, "Unavailable"))
    tracker.observe(attempt("a", 5, "Unavailable"))
    tracker.observe(attempt("b", 0, "Unsupported"))
    tracker.observe({ ...attempt("b", 0), cached: true })
    expect(tracker.estimate("a")).toBeGreaterThan(150)
    expect(tracker.estimate("b")).toBe(150)
    expect(Latency.order(tracker, ["a", "b", "c"], (name) => name !== "c")).toEqual(["b", "a", "c"])
    expect(Latency.order(tracker, ["a", "b", "d"], () => true)).toEqual(["d", "b", "a"])
  })
})
