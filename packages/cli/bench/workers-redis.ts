/**
 * Several workers, one Redis (issue 19), against `peel simulate` and a real redis-server, each worker a
 * real `peel run` process:
 *
 * 1. **One quota, three workers**: `peel simulate --rpm 30` (counts ANY 60 s), the pipeline's `rpm: 30`,
 *    three `peel run --input` workers with 20 requests each at c=8, sharing Redis (`--redis URL`); then the
 *    same with each worker's own memory state. Prints images, upstream calls, refused calls (429), wall
 *    time and images per minute against the quota.
 * 2. **Coalescing across processes**: the same request started in three workers at once, upstream
 *    latency 2 s, `cache: { store: memory }` (in Redis with `--redis`): upstream calls and images; then
 *    without Redis.
 * 3. **Cost of Redis per request**: one process, c=1, 200 requests (budget + cache + rpm + breaker +
 *    hedging statistics), simulator latency 0: Redis round trips per request (what the client sent, from
 *    `redis-cli MONITOR`) and the added p50/p99 request latency against memory state.
 *
 * Real time by nature (part 1 is about two minutes per mode). Needs `redis-server` (Debian's package).
 *
 * Run: `npx pnpm --filter @peel/cli exec node bench/workers-redis.ts` (`PEEL_BENCH_PARTS=1,2,3`).
 */
import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Pipeline, Runner, State } from "@peel/core"
import { Effect } from "effect"
import { startRedis } from "../../testkit/src/RedisServer.ts"
import { loadOptions } from "../src/plugins.ts"
import { binPath, percentile } from "./shared.ts"
import { simulatorEnv, startSimulatorWith } from "./simulator-process.ts"

const parts = new Set((process.env.PEEL_BENCH_PARTS ?? "1,2,3").split(",").map(Number))
const folder = mkdtempSync(join(tmpdir(), "peel-bench-workers-"))
const redis = await startRedis()

const pipelineFile = (name: string, stages: ReadonlyArray<string>) => {
  const file = join(folder, `${name}.yaml`)
  writeFileSync(
    file,
    [
      "version: 1",
      `name: ${name}`,
      "channels:",
      "  google:",
      "    plugin: google-ai-studio",
      '    baseUrl: "${GEMINI_BASE_URL}"',
      '    apiKey: "${GEMINI_API_KEY}"',
      "stages:",
      ...stages,
      "",
    ].join("\n"),
  )
  return file
}

/** `peel run ARGS` as its own process; resolves with its exit code and stderr. */
const worker = (args: ReadonlyArray<string>, env: Record<string, string | undefined>) =>
  new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, "run", ...args], { env, stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.once("error", reject)
    child.once("exit", (code) => resolve({ code, stderr }))
  })

const imagesIn = (dir: string) => {
  try {
    return readdirSync(dir).filter((name) => /\.(png|jpg|webp)$/.test(name)).length
  } catch {
    return 0
  }
}

try {
  if (parts.has(1)) {
    const quota = pipelineFile("quota", [
      "  - generate:",
      "      timeout: 120s",
      "      retry: { attempts: 3, maxRetryAfter: 90s }",
      "      channels: { google: { rpm: 30 } }",
    ])
    console.log("1. One quota, three workers: peel simulate --rpm 30, pipeline rpm: 30, 3 × 20 requests at c=8")
    for (const mode of ["redis", "memory"] as const) {
      const simulator = await startSimulatorWith(["--rpm", "30", "--latency", "500ms", "--seed", "3"])
      const env = simulatorEnv(simulator.url)
      const started = performance.now()
      const runs = await Promise.all(
        [0, 1, 2].map((w) => {
          const input = join(folder, `quota-${mode}-${w}.jsonl`)
          writeFileSync(
            input,
            Array.from({ length: 20 }, (_, index) =>
              JSON.stringify({ id: `w${w}-${index}`, prompt: `quota bench ${mode} ${w}/${index}: a paper boat` }),
            ).join("\n"),
          )
          const out = join(folder, `quota-out-${mode}-${w}`)
          return worker(
            [
              quota,
              "--input",
              input,
              "--out",
              out,
              "--concurrency",
              "8",
              "--state",
              join(folder, `state-${mode}-${w}`),
            ].concat(mode === "redis" ? ["--redis", redis.url] : []),
            env,
          ).then((result) => {
            if (result.code !== 0)
              process.stderr.write(`worker ${mode}-${w} exited ${result.code}: ${result.stderr.slice(-600)}\n`)
            return { ...result, images: imagesIn(out) }
          })
        }),
      )
      const wallMs = performance.now() - started
      const ledger = await simulator.ledger()
      await simulator.stop()
      const images = runs.reduce((sum, run) => sum + run.images, 0)
      const refused = ledger.calls.filter((call) => call.status === 429).length
      console.log(
        `  ${mode.padEnd(6)} images ${images}/60, upstream calls ${ledger.totals.calls}, refused (429) ${refused}, wall ${(wallMs / 1000).toFixed(1)} s, ${(images / (wallMs / 60_000)).toFixed(1)} images/min (quota 30/min), exit codes ${runs.map((run) => run.code).join(",")}`,
      )
    }
  }

  if (parts.has(2)) {
    const cached = pipelineFile("coalesce", ["  - cache: { store: memory }", "  - generate: { timeout: 60s }"])
    console.log("2. Coalescing across processes: one request in three workers at once, upstream latency 2 s")
    for (const mode of ["redis", "memory"] as const) {
      const simulator = await startSimulatorWith(["--latency", "2s", "--seed", "5"])
      const env = simulatorEnv(simulator.url)
      const prompt = `coalescing bench (${mode}, ${process.pid}): a lighthouse at dusk`
      const outs = [0, 1, 2].map((w) => join(folder, `coalesce-${mode}-${w}`))
      for (const out of outs) mkdirSync(out, { recursive: true })
      const runs = await Promise.all(
        outs.map((out, w) =>
          worker(
            [cached, "--prompt", prompt, "--id", `w${w}`, "--out", out].concat(
              mode === "redis" ? ["--redis", redis.url] : [],
            ),
            env,
          ),
        ),
      )
      const ledger = await simulator.ledger()
      await simulator.stop()
      const images = outs.reduce((sum, out) => sum + imagesIn(out), 0)
      console.log(
        `  ${mode.padEnd(6)} upstream calls ${ledger.totals.calls}, images ${images}/3, billed $${ledger.totals.billedUsd.toFixed(3)}, exit codes ${runs.map((run) => run.code).join(",")}`,
      )
    }
  }

  if (parts.has(3)) {
    const total = Number(process.env.PEEL_BENCH_REDIS_REQUESTS ?? 200)
    const full = pipelineFile("cost", [
      "  - budget: { limit: 1000, window: 1d, name: bench }",
      "  - cache: { store: memory }",
      "  - generate:",
      "      timeout: 60s",
      "      breaker: { failures: 10, open: 30s }",
      "      channels: { google: { rpm: 100000 } }",
    ])
    const simulator = await startSimulatorWith(["--latency", "0ms", "--seed", "9"])
    const env = simulatorEnv(simulator.url)
    console.log(`3. Cost of Redis per request: one process, c=1, ${total} requests (budget, cache, rpm, breaker)`)
    const latencies: Record<string, Array<number>> = {}
    const runOnce = (state: "memory" | "redis", count: number, tag: string) =>
      Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const pipeline = yield* Pipeline.load(full, { ...loadOptions, env })
            const runner = yield* Runner.make(pipeline, {
              state: state === "redis" ? State.layerOf({ redis: redis.url }) : State.layerMemory,
            })
            const times: Array<number> = []
            for (let index = 0; index < count; index++) {
              const started = performance.now()
              yield* runner.run({ prompt: `cost bench ${tag} ${index} ${process.pid}`, id: `c${index}` })
              times.push(performance.now() - started)
            }
            return times
          }),
        ),
      )
    // Round trips: what the clients sent (MONITOR marks commands run inside a script as "lua"), counted on
    // a run of its own (MONITOR slows the server), warm runner: the first request loads the scripts.
    const monitorFile = join(folder, "monitor.txt")
    const monitor = spawn("sh", ["-c", `exec redis-cli -p ${redis.port} MONITOR > ${monitorFile}`])
    await new Promise((resolve) => setTimeout(resolve, 300))
    const counted = 50
    await runOnce("redis", counted, "monitored")
    await new Promise((resolve) => setTimeout(resolve, 300))
    monitor.kill("SIGTERM")
    const lines = readFileSync(monitorFile, "utf8")
      .split("\n")
      .filter((line) => /^\d/.test(line))
    const sent = lines.filter((line) => !line.includes(" lua]") && !/"(SCRIPT|HELLO|CLIENT|INFO)"/.test(line))
    const inScripts = lines.length - sent.length
    const byCommand = new Map<string, number>()
    for (const line of sent) {
      const command = /"([A-Z]+)"/.exec(line)?.[1] ?? "?"
      byCommand.set(command, (byCommand.get(command) ?? 0) + 1)
    }
    for (const [tag, state] of [
      ["memory-1", "memory"],
      ["redis-1", "redis"],
      ["memory-2", "memory"],
      ["redis-2", "redis"],
    ] as const) {
      const measured = await runOnce(state, total, tag)
      latencies[state] = [...(latencies[state] ?? []), ...measured.slice(10)]
    }
    await simulator.stop()
    const summary = (name: string) => {
      const sorted = [...latencies[name]!].sort((left, right) => left - right)
      return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) }
    }
    const memory = summary("memory")
    const shared = summary("redis")
    console.log(
      `  Redis round trips per request: ${(sent.length / counted).toFixed(1)} (${[...byCommand].map(([command, count]) => `${command} ${(count / counted).toFixed(1)}`).join(", ")}); commands run inside those scripts: ${(inScripts / counted).toFixed(1)}`,
    )
    console.log(
      `  request latency memory p50 ${memory.p50.toFixed(2)} ms, p99 ${memory.p99.toFixed(2)} ms; redis p50 ${shared.p50.toFixed(2)} ms, p99 ${shared.p99.toFixed(2)} ms; added p50 ${(shared.p50 - memory.p50).toFixed(2)} ms, p99 ${(shared.p99 - memory.p99).toFixed(2)} ms`,
    )
  }
} finally {
  await redis.close()
}
