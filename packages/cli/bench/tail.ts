/**
 * Tail benchmark (issue 17 item 6): 300 requests through `pipelines/realtime.yaml` AS CHECKED IN (real
 * timings: 120 s attempt timeout, 5 min deadline, hedge after the observed p95) against
 * `peel simulate --faults 429=0.2,503=0.05,hang=0.02,malformed=0.01 --latency 200ms` in its own process
 * (real time, no scaling), at concurrency 16. Target: the whole run in ≤ 120 s (it took 176 s before
 * same-channel hedging and adaptive timeouts, five requests 120–144 s: a hang on the last ready channel
 * cost the whole attempt timeout).
 *
 * Prints the wall time, request latency percentiles, the slowest requests' attempt trails, hedges (and
 * how many went to the same channel), timeouts, placeholders and failures.
 *
 * Knobs: `PEEL_BENCH_TAIL` requests (default 300), `PEEL_BENCH_TAIL_CONCURRENCY` (16),
 * `PEEL_BENCH_TAIL_SEED` (simulator seed, default 17).
 *
 * Run: `npx pnpm --filter @peel/cli exec node bench/tail.ts`.
 */
import { fileURLToPath } from "node:url"
import { Pipeline, type Request, Runner } from "@peel/core"
import { Effect, Stream } from "effect"
import { loadOptions } from "../src/plugins.ts"
import { percentile } from "./shared.ts"
import { isCall, mixedRequest, simulatorEnv, startSimulatorWith } from "./simulator-process.ts"

const total = Number(process.env.PEEL_BENCH_TAIL ?? 300)
const concurrency = Number(process.env.PEEL_BENCH_TAIL_CONCURRENCY ?? 16)
const seed = Number(process.env.PEEL_BENCH_TAIL_SEED ?? 17)
const faults = "429=0.2,503=0.05,hang=0.02,malformed=0.01"
const pipelineFile = fileURLToPath(new URL("../../../pipelines/realtime.yaml", import.meta.url))

type Attempt = Request.ImageResult["attempts"][number]

const requestOf = (index: number): Request.ImageRequest => mixedRequest("tail bench", index)

const simulator = await startSimulatorWith(["--latency", "200ms", "--faults", faults, "--seed", String(seed)])
const latencies: Array<number> = []
const slowest: Array<{ latencyMs: number; trail: string }> = []
let real = 0
let placeholders = 0
let failed = 0
let calls = 0
let hedges = 0
let sameChannel = 0
let hedgeWins = 0
let timeouts = 0
const account = (attempts: ReadonlyArray<Attempt>, latencyMs: number) => {
  latencies.push(latencyMs)
  for (const attempt of attempts) {
    if (!isCall(attempt)) continue
    calls++
    if (attempt.hedge === true) hedges++
    if (attempt.sameChannel === true) sameChannel++
    if (attempt.hedge === true && attempt.won === true) hedgeWins++
    if (attempt.outcome === "Timeout") timeouts++
  }
  const startedAt = Math.min(...attempts.map((attempt) => attempt.startedAt))
  const trail = attempts
    .filter((attempt) => attempt.outcome !== "Unsupported")
    .map(
      (attempt) =>
        `${attempt.channel}:${attempt.outcome}@${((attempt.startedAt - startedAt) / 1000).toFixed(1)}s+${(attempt.latencyMs / 1000).toFixed(1)}s${attempt.hedge === true ? (attempt.sameChannel === true ? "(same-channel hedge)" : "(hedge)") : ""}${attempt.won === true ? "*" : ""}`,
    )
    .join(" ")
  slowest.push({ latencyMs, trail: `(started at ${((startedAt - runStartedAt) / 1000).toFixed(1)} s) ${trail}` })
  slowest.sort((left, right) => right.latencyMs - left.latencyMs)
  if (slowest.length > 5) slowest.pop()
}

const started = performance.now()
const runStartedAt = Date.now()
try {
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Pipeline.load(pipelineFile, { ...loadOptions, env: simulatorEnv(simulator.url) })
        const runner = yield* Runner.make(pipeline, {})
        const requests = Array.from({ length: total }, (_, index) => requestOf(index))
        yield* runner.runAll(requests, { concurrency }).pipe(
          Stream.runForEach((outcome) =>
            Effect.sync(() => {
              if (outcome._tag === "Done") {
                if (outcome.result.placeholder) placeholders++
                else real++
                account(outcome.result.attempts, outcome.result.latencyMs)
              } else if (outcome._tag === "Failed") {
                failed++
                account(outcome.failure.attempts, outcome.failure.latencyMs)
              }
            }),
          ),
        )
      }),
    ),
  )
} finally {
  await simulator.stop().catch(() => undefined)
}
const wallMs = performance.now() - started
latencies.sort((left, right) => left - right)
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`
console.log(`tail benchmark: ${total} requests, realtime.yaml as checked in, c=${concurrency}`)
console.log(`  simulator: --faults ${faults} --latency 200ms --seed ${seed}`)
console.log(`  wall time                 ${seconds(wallMs)}   (target ≤ 120 s; 176 s before)`)
console.log(`  images                    ${real} real, ${placeholders} placeholders, ${failed} failed`)
console.log(
  `  request latency           p50 ${seconds(percentile(latencies, 50))}, p99 ${seconds(percentile(latencies, 99))}, max ${seconds(latencies.at(-1) ?? 0)}`,
)
console.log(
  `  calls                     ${calls} (${(calls / total).toFixed(2)}/request); timeouts ${timeouts}; hedges ${hedges} (same channel ${sameChannel}, won ${hedgeWins})`,
)
console.log("  slowest requests:")
for (const slow of slowest) console.log(`    ${seconds(slow.latencyMs)}  ${slow.trail}`)
