/**
 * Estimates from planning alone: workload expansion (shares, percentages, independence), the Google
 * standard baseline (Pro unless named, the size asked before clamping), cache repeats by TTL, batch work
 * with and without a batch channel, and request files with repeated cache keys.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Estimate, Pipeline, Runner, Workload } from "../src/index.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const plugin = join(import.meta.dirname, "fixtures", "fixture-plugin.ts")

const write = (name: string, lines: ReadonlyArray<string>): string => {
  const file = join(mkdtempSync(join(tmpdir(), "peel-estimate-")), name)
  writeFileSync(file, lines.join("\n"))
  return file
}

const pipeline = (extra: ReadonlyArray<string>) =>
  write("pipeline.yaml", [
    "version: 1",
    "name: estimate-test",
    "channels:",
    `  proxy: { plugin: ${plugin}, price: 0.05 }`,
    `  google: { plugin: ${plugin}, price: 0.134 }`,
    "stages:",
    "  - resolution: { hero: 4K, default: 2K }",
    "  - route: { low: gemini-2.5-flash-image, default: gemini-3-pro-image }",
    ...extra,
    "  - select: { strategy: ordered, channels: [proxy, google] }",
    "  - generate: {}",
  ])

const workload = write("workload.yaml", [
  "version: 1",
  "name: small",
  "requestsPerMonth: 1000",
  "urgency: { batch: 0.5, realtime: 50% }",
  "priority: { normal: 80%, low: 20% }",
  "use: { hero: 10%, blog: 90% }",
  "repeats: { share: 10%, within: 1h }",
])

const estimate = <E>(file: string, use: (runner: Runner.RunnerShape) => Effect.Effect<Estimate.Report, E>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const runner = yield* Runner.make(yield* Pipeline.load(file, { env: {}, today: "2026-11-26" }))
        return yield* use(runner)
      }),
    ),
  )

afterEach(() => Fixture.reset())

describe("workloads", () => {
  it("expand into independent classes weighted by the product of their shares", async () => {
    const work = await Effect.runPromise(Workload.load(workload))
    expect(work.classes).toHaveLength(2 * 2 * 2)
    expect(work.classes.reduce((sum, entry) => sum + entry.perMonth, 0)).toBeCloseTo(1000, 9)
    const heroLowBatch = work.classes.find(
      (entry) => entry.request.use === "hero" && entry.request.priority === "low" && entry.request.urgency === "batch",
    )
    expect(heroLowBatch?.perMonth).toBeCloseTo(1000 * 0.5 * 0.2 * 0.1, 9)
    expect(work.repeats).toEqual({ share: 0.1, withinMillis: 3_600_000 })
    expect(Workload.parseShare("12.5%")).toBe(0.125)
    expect(Workload.parseShare(1.5)).toBeUndefined()
    expect(Workload.parseShare("150%")).toBeUndefined()
  })
})

describe("estimates", () => {
  it("price each class at its first candidate, beside Google's standard price for Pro at the size asked", async () => {
    const report = await estimate(pipeline([]), (runner) =>
      Effect.flatMap(Workload.load(workload), (work) => Estimate.workload(runner, work)),
    )
    expect(Fixture.calls.size).toBe(0)
    expect(report.images).toBe(1000)
    expect(report.totalUsd).toBeCloseTo(1000 * 0.05, 6)
    // Google: Pro 4K $0.24 for hero (10%), $0.1344 otherwise — low priority too (its plan is Flash 1K,
    // the baseline is the Pro image at the size asked).
    expect(report.baselineUsd).toBeCloseTo(100 * 0.24 + 900 * 0.1344, 6)
    expect(report.cache.enabled).toBe(false)
    expect(report.calls).toBe(1000)
    expect(report.byModel["gemini-2.5-flash-image"]?.images).toBeCloseTo(200, 9)
    expect(report.bySize["4K"]?.images).toBeCloseTo(80, 9)
    expect(report.bySize["1K"]?.images).toBeCloseTo(200, 9)
    expect(report.briefBaselineUsd).toBe(1340)
    // No batch channel: batch work is made in real time; Google's Batch API would undercut the proxy only
    // for Flash ($0.0194 a 1K image against $0.05).
    expect(report.batch).toMatchObject({ requested: 500, inBatch: 0 })
    expect(report.batch.wouldSaveUsd).toBeCloseTo(100 * (0.05 - 0.01935), 4)
  })

  it("counts repeats as cache hits only when the cache's TTL covers them", async () => {
    const hour = await estimate(pipeline(["  - cache: { store: memory, ttl: 1h }"]), (runner) =>
      Effect.flatMap(Workload.load(workload), (work) => Estimate.workload(runner, work)),
    )
    expect(hour.cache).toMatchObject({ enabled: true, images: 100, savedUsd: 5 })
    expect(hour.totalUsd).toBeCloseTo(900 * 0.05, 6)
    expect(hour.byChannel["(cache)"]?.images).toBeCloseTo(100, 9)
    const short = await estimate(pipeline(["  - cache: { store: memory, ttl: 10m }"]), (runner) =>
      Effect.flatMap(Workload.load(workload), (work) => Estimate.workload(runner, work)),
    )
    expect(short.cache).toMatchObject({ enabled: true, images: 0 })
  })

  it("prices a request list: a repeated cache key is a hit", async () => {
    const report = await estimate(pipeline(["  - cache: {}"]), (runner) =>
      Estimate.requests(runner, [
        { prompt: "a fox", use: "hero" },
        { prompt: " a  fox", use: "hero", priority: "high" },
        { prompt: "a fox" },
      ]),
    )
    expect(report).toMatchObject({ per: "input", images: 3, calls: 2 })
    expect(report.totalUsd).toBeCloseTo(0.1, 9)
    expect(report.cache.savedUsd).toBeCloseTo(0.05, 9)
  })
})
