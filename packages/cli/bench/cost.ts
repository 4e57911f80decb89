/**
 * Cost benchmark: 1,000 requests sampled from the brief's workload (pipelines/workloads/brief.yaml) run
 * through pipelines/economy.yaml (flat proxy prices) and pipelines/realtime.yaml (mostly Google's token
 * prices) against the simulator (its own process). Checks that the simulator's
 * billed total × 10 is within 5% of `peel estimate`'s monthly figure and that Peel's own total equals the
 * ledger to the cent; then measures cache hit latency (memory and file store, a 4K image) through the
 * runner. Exit 1 when a check fails.
 *
 * The sample is stratified, not random: each request class (urgency × priority × use) gets its share of
 * the 1,000 by largest remainder, and 20% of each class repeats an earlier prompt of that class (the
 * workload's "repeat within the hour"), in a seeded shuffled order, 16 in flight.
 *
 *   node packages/cli/bench/cost.ts        (part of `pnpm bench`)
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cache, Estimate, Pipeline, type Request, Runner, Workload } from "@peel/core"
import { Effect, Stream } from "effect"
import { loadOptions } from "../src/plugins.ts"
import { startSimulator } from "./shared.ts"

const root = join(import.meta.dirname, "..", "..", "..")
const sampleSize = 1000
const concurrency = 16

/** Largest-remainder apportionment of `total` by `weights`. */
const apportion = (weights: ReadonlyArray<number>, total: number): Array<number> => {
  const sum = weights.reduce((left, right) => left + right, 0)
  const exact = weights.map((weight) => (weight / sum) * total)
  const counts = exact.map(Math.floor)
  let left = total - counts.reduce((a, b) => a + b, 0)
  const order = exact
    .map((value, index) => ({ index, rest: value - Math.floor(value) }))
    .sort((a, b) => b.rest - a.rest)
  for (const { index } of order) {
    if (left === 0) break
    counts[index]! += 1
    left -= 1
  }
  return counts
}

/** mulberry32 */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

const sampleOf = (work: Workload.Workload): Array<Request.ImageRequest> => {
  const counts = apportion(
    work.classes.map((entry) => entry.perMonth),
    sampleSize,
  )
  const repeatShare = work.repeats?.share ?? 0
  const repeats = apportion(
    counts.map((count) => (count >= 2 ? count : 0)),
    Math.round(sampleSize * repeatShare),
  ).map((wanted, index) => Math.min(wanted, Math.max(0, counts[index]! - 1)))
  const requests: Array<Request.ImageRequest> = []
  work.classes.forEach((entry, index) => {
    const count = counts[index]!
    const originals = count - repeats[index]!
    for (let n = 0; n < count; n++) {
      const { id: _id, ...base } = entry.request
      requests.push({
        ...base,
        id: `${entry.request.id}-${n}`,
        prompt: `bench ${entry.request.prompt} #${n < originals ? n : n % originals}`,
      })
    }
  })
  const next = random(42)
  for (let index = requests.length - 1; index > 0; index--) {
    const other = Math.floor(next() * (index + 1))
    ;[requests[index], requests[other]] = [requests[other]!, requests[index]!]
  }
  return requests
}

const copyPipeline = (name: string, text?: string): string => {
  const folder = mkdtempSync(join(tmpdir(), "peel-bench-cost-"))
  mkdirSync(join(folder, "pipelines"))
  const file = join(folder, "pipelines", name)
  if (text === undefined) copyFileSync(join(root, "pipelines", name), file)
  else writeFileSync(file, text)
  return file
}

const main = async () => {
  const simulator = await startSimulator()
  const env = {
    ...process.env,
    GEMINI_BASE_URL: simulator.url,
    GEMINI_API_KEY: "bench-gemini-key-0001",
    PROXY_NATIVE_BASE_URL: simulator.url,
    PROXY_BASE_URL: `${simulator.url}/v1`,
    PROXY_API_KEY: "bench-proxy-key-0001",
    VERTEX_BASE_URL: simulator.url,
    GOOGLE_CLOUD_PROJECT: "peel-bench",
    VERTEX_ACCESS_TOKEN: "bench-vertex-token-0001",
    OPENROUTER_BASE_URL: `${simulator.url}/api/v1`,
    OPENROUTER_API_KEY: "bench-openrouter-key-0001",
  }
  let failed = false
  try {
    const work = await Effect.runPromise(Workload.load(join(root, "pipelines", "workloads", "brief.yaml")))
    const requests = sampleOf(work)
    for (const name of ["economy.yaml", "realtime.yaml"]) {
      await simulator.reset()
      const file = copyPipeline(name)
      const { estimate, spent, cachedCount, failures } = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const runner = yield* Runner.make(yield* Pipeline.load(file, { ...loadOptions, env }))
            const estimate = yield* Estimate.workload(runner, work)
            let spent = 0
            let cachedCount = 0
            let failures = 0
            yield* runner.runAll(requests, { concurrency }).pipe(
              Stream.runForEach((outcome) =>
                Effect.sync(() => {
                  if (outcome._tag === "Done") {
                    spent += outcome.result.costUsd
                    if (outcome.result.cached) cachedCount += 1
                  } else if (outcome._tag === "Failed") {
                    spent += outcome.failure.costUsd
                    failures += 1
                  }
                }),
              ),
            )
            return { estimate, spent, cachedCount, failures }
          }),
        ),
      )
      const ledger = await simulator.ledgerTotals()
      const monthly = ledger.billedUsd * (work.requestsPerMonth / sampleSize)
      const deviation = (monthly - estimate.totalUsd) / estimate.totalUsd
      const cents = (usd: number) => Math.round(usd * 100)
      process.stdout.write(
        [
          `cost: ${requests.length} requests from ${work.name} through ${name}, ${concurrency} in flight`,
          `  upstream calls ${ledger.calls}, billed images ${ledger.billedImages}, cache hits ${cachedCount}, failures ${failures}`,
          `  simulator billed $${ledger.billedUsd.toFixed(4)}; Peel accounted $${spent.toFixed(4)} (${cents(spent) === cents(ledger.billedUsd) ? "equal to the cent" : "DIFFERENT"})`,
          `  × ${work.requestsPerMonth / sampleSize} = $${monthly.toFixed(2)} a month; peel estimate says $${estimate.totalUsd.toFixed(2)} (${(deviation * 100).toFixed(2)}%${name === "economy.yaml" ? "; limit ±5%" : ""})${estimate.hedging === undefined ? "" : `, up to $${(estimate.totalUsd + estimate.hedging.upToUsd).toFixed(2)} with hedges`}`,
          `  Google's standard price for the same month: $${estimate.baselineUsd.toFixed(2)}; the brief's baseline $${Estimate.brief.usd.toFixed(2)}`,
          "",
        ].join("\n"),
      )
      // The ±5% check is economy.yaml's (the issue's); realtime.yaml hedges (up to 10% more calls, each
      // billed) and Google bills thinking tokens, neither of which a plan's expected price counts.
      if (cents(spent) !== cents(ledger.billedUsd) || failures > 0) failed = true
      if (name === "economy.yaml" && Math.abs(deviation) > 0.05) failed = true
    }

    // Cache hit latency, 4K, through the runner: memory and file stores.
    for (const store of ["memory", "file"] as const) {
      const file = copyPipeline(
        `hits-${store}.yaml`,
        [
          "version: 1",
          `name: hits-${store}`,
          "channels:",
          '  google: { plugin: google-ai-studio, baseUrl: "${GEMINI_BASE_URL}", apiKey: "${GEMINI_API_KEY}" }',
          "stages:",
          store === "file" ? "  - cache: { store: file, path: ../.peel/cache }" : "  - cache: { store: memory }",
          "  - generate: { timeout: 60s }",
        ].join("\n"),
      )
      const timings = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const runner = yield* Runner.make(yield* Pipeline.load(file, { ...loadOptions, env }))
            const request = { prompt: "a 4K lighthouse", size: "4K", aspectRatio: "16:9" } as const
            const first = yield* runner.run({ ...request, id: "first" })
            // Warm up (JIT, file cache), then measure.
            for (let index = 0; index < 200; index++) yield* runner.run({ ...request, id: `warm-${index}` })
            const timings: Array<number> = []
            for (let index = 0; index < 1000; index++) {
              const started = performance.now()
              const hit = yield* runner.run({ ...request, id: `hit-${index}` })
              timings.push(performance.now() - started)
              if (!hit.cached) throw new Error("expected a cache hit")
            }
            return { timings, bytes: first.bytes.length }
          }),
        ),
      )
      // The store alone (read + integrity check), without the runner around it.
      const raw: Array<number> = []
      const directory = join(file, "..", "..", ".peel", "cache")
      const imageCache =
        store === "file" ? Cache.make(Cache.fileStore({ directory, maxBytes: 2e9 }), 3_600_000) : undefined
      if (imageCache !== undefined) {
        const keys = await Effect.runPromise(Cache.fileKeyValueStore({ directory, maxBytes: 2e9 }).keys)
        for (let index = 0; index < 200; index++) await Effect.runPromise(imageCache.read(keys[0]!))
        for (let index = 0; index < 1000; index++) {
          const started = performance.now()
          const found = await Effect.runPromise(imageCache.read(keys[0]!))
          raw.push(performance.now() - started)
          if (found === undefined) throw new Error("expected the entry")
        }
        process.stdout.write(
          `cache read, file store alone (read, SHA-256 check, image check), 1,000 reads: p50 ${percentile(raw, 50).toFixed(3)} ms, p99 ${percentile(raw, 99).toFixed(3)} ms\n`,
        )
      }
      const p50 = percentile(timings.timings, 50)
      const p99 = percentile(timings.timings, 99)
      process.stdout.write(
        `cache hit through the runner, ${store} store, 4K image (${(timings.bytes / 1024).toFixed(0)} KiB), 1,000 hits: p50 ${p50.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms${store === "file" ? ` (goal p99 ≤ 5 ms: ${p99 <= 5 ? "met" : "MISSED"})` : ""}\n`,
      )
    }
  } finally {
    await simulator.stop()
  }
  if (failed) {
    process.stdout.write("cost benchmark: a check FAILED\n")
    process.exitCode = 1
  }
}

await main()
