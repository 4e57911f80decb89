/**
 * Overhead benchmark (DESIGN §8): Peel's runner (loader-built pipeline, stages, channel, result
 * accounting) versus calling `@google/genai` directly, both against the in-process simulator with zero
 * simulated latency, so what is measured is Peel's own cost. Prints p50/p99 latency and throughput at
 * concurrency 1, 8 and 64. Bounded: a fixed number of requests per row.
 *
 * Run: `npx pnpm bench` (all benchmarks) or `npx pnpm --filter @peel/cli bench`.
 */
import { writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { GoogleGenAI } from "@google/genai"
import { Pipeline, Runner } from "@peel/core"
import { Simulator } from "@peel/simulator"
import { Effect } from "effect"
import { loadOptions } from "../src/plugins.ts"

const requestsPerRow = Number(process.env.PEEL_BENCH_REQUESTS ?? 400)
const simulator = await Simulator.start({ port: 0, latency: "0" })
const pipelineFile = join(tmpdir(), `peel-bench-${process.pid}.yaml`)
writeFileSync(
  pipelineFile,
  [
    "version: 1",
    "name: bench",
    "channels:",
    `  google: { plugin: google-ai-studio, baseUrl: "${simulator.url}", apiKey: bench-key }`,
    "stages:",
    "  - resolution: { default: 1K }",
    "  - route: { default: gemini-3-pro-image }",
    "  - generate: { timeout: 30s }",
  ].join("\n"),
)

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

/** Run `total` calls of `call` with at most `concurrency` in flight; latencies in ms and wall time. */
const measure = async (call: (index: number) => Promise<unknown>, concurrency: number, total: number) => {
  const latencies: Array<number> = []
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const index = next++
        const begin = performance.now()
        await call(index)
        latencies.push(performance.now() - begin)
      }
    }),
  )
  const wall = performance.now() - started
  latencies.sort((left, right) => left - right)
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), perSecond: (total / wall) * 1000 }
}

const sdk = new GoogleGenAI({ apiKey: "bench-key", httpOptions: { baseUrl: simulator.url } })
const direct = (index: number) =>
  sdk.models.generateContent({
    model: "gemini-3-pro-image",
    contents: `bench prompt ${index}`,
    config: { responseModalities: ["TEXT", "IMAGE"], imageConfig: { aspectRatio: "1:1", imageSize: "1K" } },
  })

const rows: Array<string> = []
await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const pipeline = yield* Pipeline.load(pipelineFile, loadOptions)
      const runner = yield* Runner.make(pipeline)
      const viaPeel = (index: number) => Effect.runPromise(runner.run({ prompt: `bench prompt ${index}` }))
      yield* Effect.promise(() => measure(viaPeel, 8, 50)) // warm-up
      yield* Effect.promise(() => measure(direct, 8, 50))
      for (const concurrency of [1, 8, 64]) {
        const sdkOnly = yield* Effect.promise(() => measure(direct, concurrency, requestsPerRow))
        const peel = yield* Effect.promise(() => measure(viaPeel, concurrency, requestsPerRow))
        rows.push(
          [
            String(concurrency).padStart(11),
            `${sdkOnly.p50.toFixed(2)} / ${sdkOnly.p99.toFixed(2)}`.padStart(16),
            `${peel.p50.toFixed(2)} / ${peel.p99.toFixed(2)}`.padStart(16),
            `+${(peel.p50 - sdkOnly.p50).toFixed(2)} / +${(peel.p99 - sdkOnly.p99).toFixed(2)}`.padStart(18),
            sdkOnly.perSecond.toFixed(0).padStart(9),
            peel.perSecond.toFixed(0).padStart(9),
            (peel.perSecond / sdkOnly.perSecond).toFixed(2).padStart(6),
          ].join("  "),
        )
      }
    }),
  ),
)
await simulator.stop()
process.stdout.write(
  `overhead: Peel runner vs @google/genai direct, simulator at zero latency, ${requestsPerRow} requests per row, 1K images\n` +
    `concurrency  sdk p50/p99 ms  peel p50/p99 ms  added p50/p99 ms      sdk/s    peel/s  ratio\n${rows.join("\n")}\n`,
)
