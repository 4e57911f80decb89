/**
 * Quota benchmark (issue 17 item 6): one process, a pipeline with the exact quota configured
 * (`channels: { google: { rpm: 30 } }`), 60 requests against `peel simulate --rpm 30` (an upstream that
 * counts ANY 60 s, in its own process, real time). Target: 60 images with at most 1 refused call (the
 * token bucket made 76 calls for 60 images, 16 refused: a full bucket went out at once and refilled at 30
 * a minute, so one 60 s window saw up to about 60).
 *
 * It takes about two minutes by nature (60 calls at 30 a minute). Prints the wall time, images, calls
 * and 429s from the simulator's ledger, and the most calls the simulator saw start in any 60 s.
 *
 * Knobs: `PEEL_BENCH_RPM_REQUESTS` (default 60), `PEEL_BENCH_RPM_CONCURRENCY` (default 16).
 *
 * Run: `npx pnpm --filter @peel/cli exec node bench/rpm.ts`.
 */
import { writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Pipeline, Runner } from "@peel/core"
import { Effect, Stream } from "effect"
import { loadOptions } from "../src/plugins.ts"
import { simulatorEnv, startSimulatorWith } from "./simulator-process.ts"

const rpm = 30
const total = Number(process.env.PEEL_BENCH_RPM_REQUESTS ?? 60)
const concurrency = Number(process.env.PEEL_BENCH_RPM_CONCURRENCY ?? 16)

const pipelineFile = join(tmpdir(), `peel-bench-rpm-${process.pid}.yaml`)
writeFileSync(
  pipelineFile,
  [
    "version: 1",
    "name: rpm-bench",
    "channels:",
    "  google:",
    "    plugin: google-ai-studio",
    '    baseUrl: "${GEMINI_BASE_URL}"',
    '    apiKey: "${GEMINI_API_KEY}"',
    "stages:",
    "  - generate:",
    "      timeout: 120s",
    "      retry: { attempts: 3, maxRetryAfter: 90s }",
    `      channels: { google: { rpm: ${rpm} } }`,
    "",
  ].join("\n"),
)

const simulator = await startSimulatorWith(["--rpm", String(rpm), "--latency", "500ms", "--seed", "3"])
let images = 0
let failed = 0
const starts: Array<number> = []
const started = performance.now()
try {
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Pipeline.load(pipelineFile, { ...loadOptions, env: simulatorEnv(simulator.url) })
        const runner = yield* Runner.make(pipeline, {})
        const requests = Array.from({ length: total }, (_, index) => ({
          id: `q${index}`,
          prompt: `rpm bench ${index}: a paper boat on a pond`,
        }))
        yield* runner.runAll(requests, { concurrency }).pipe(
          Stream.runForEach((outcome) =>
            Effect.sync(() => {
              const attempts =
                outcome._tag === "Done"
                  ? outcome.result.attempts
                  : outcome._tag === "Failed"
                    ? outcome.failure.attempts
                    : []
              for (const attempt of attempts) if (attempt.outcome !== "CoolingDown") starts.push(attempt.startedAt)
              if (outcome._tag === "Done") images++
              else if (outcome._tag === "Failed") failed++
            }),
          ),
        )
      }),
    ),
  )
} finally {
  const ledger = await simulator.ledger()
  await simulator.stop().catch(() => undefined)
  const wallMs = performance.now() - started
  const refused = ledger.calls.filter((call) => call.status === 429).length
  starts.sort((left, right) => left - right)
  let busiest = 0
  for (let first = 0; first < starts.length; first++) {
    let last = first
    while (last + 1 < starts.length && starts[last + 1]! - starts[first]! < 60_000) last++
    busiest = Math.max(busiest, last - first + 1)
  }
  console.log(`rpm benchmark: ${total} requests, rpm ${rpm} configured, peel simulate --rpm ${rpm}, c=${concurrency}`)
  console.log(`  wall time             ${(wallMs / 1000).toFixed(1)} s`)
  console.log(`  images                ${images} (${failed} failed)`)
  console.log(
    `  upstream calls        ${ledger.totals.calls}, refused (429) ${refused}   (target ≤ 1; 16 of 76 before)`,
  )
  console.log(`  most calls started in any 60 s (Peel's clock): ${busiest}`)
}
