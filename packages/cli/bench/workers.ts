/**
 * Several workers over one real Postgres (issue 19), each a real `peel run` process against `peel simulate`:
 *
 * 1. **One input, three workers, one killed**: 60 requests, three `peel run --input SAME.jsonl --postgres URL`
 *    (c=4, one shared output folder), one `kill -9`'d 3 s after its first image. Counts the images on disk (each id once),
 *    what the upstream billed against 60 + the calls the killed worker had in flight (the simulator's
 *    ledger marks a call whose client went away), and how long until the last worker ended (the killed
 *    worker's claims are taken over when its lease expires: 30 s by default).
 * 2. **One budget**: `budget: { limit: 2.00, window: 1d }` with `state: { postgres }`, three workers with
 *    their own inputs that together would spend ~$8 (60 × $0.134), in 20 randomised runs (worker
 *    concurrency, requests per worker, start times, upstream latency): what the upstream billed each time.
 *
 * Run: `node bench/workers.ts` (needs the Postgres server binaries: Debian's postgresql, or PEEL_POSTGRES_BIN);
 * `PEEL_BENCH_BUDGET_RUNS=N` changes the number of budget runs (0: none), `PEEL_BENCH_SKIP_KILL=1` skips the first.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startPostgres } from "../../testkit/src/Postgres.ts"
import { binPath } from "./shared.ts"
import { simulatorEnv, startSimulatorWith } from "./simulator-process.ts"

const root = join(import.meta.dirname, "..", "..", "..")
const scratch = () => mkdtempSync(join(tmpdir(), "peel-bench-workers-"))

interface Worker {
  readonly child: ChildProcess
  readonly done: Promise<{ code: number | null; stderr: string; stdout: string }>
}

const worker = (args: ReadonlyArray<string>, env: Record<string, string | undefined>): Worker => {
  const child = spawn(process.execPath, [binPath, ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
  let stderr = ""
  let stdout = ""
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString()
  })
  const done = new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) =>
    child.once("exit", (code) => resolve({ code, stderr, stdout })),
  )
  return { child, done }
}

const writeInput = (file: string, ids: ReadonlyArray<string>) =>
  writeFileSync(file, ids.map((id) => JSON.stringify({ id, prompt: `a lighthouse at dusk, ${id}` })).join("\n"))

const server = await startPostgres()
try {
  // ------------------------------------------------------------------------------------------------------
  if (process.env.PEEL_BENCH_SKIP_KILL !== "1") {
    const sim = await startSimulatorWith(["--latency", "1s", "--seed", "19"])
    const folder = scratch()
    const input = join(folder, "requests.jsonl")
    const ids = Array.from({ length: 60 }, (_, index) => `k-${String(index + 1).padStart(2, "0")}`)
    writeInput(input, ids)
    const url = await server.database("killed")
    const out = join(folder, "out")
    const args = ["run", "pipelines/google-direct.yaml", "--input", input, "--out", out, "--postgres", url, "--json"]
    const started = Date.now()
    const workers = [0, 1, 2].map(() => worker([...args, "--concurrency", "4"], simulatorEnv(sim.url)))
    // 3 s after the doomed worker's first image (a worker takes seconds to start on a busy machine: killed
    // 3 s after its spawn, it may not have claimed anything yet)
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer) => {
        if (chunk.toString().includes('"ok":true')) {
          workers[0]!.child.stdout!.off("data", onData)
          resolve()
        }
      }
      workers[0]!.child.stdout!.on("data", onData)
    })
    const firstImageAfter = (Date.now() - started) / 1000
    await new Promise((resolve) => setTimeout(resolve, 3000))
    workers[0]!.child.kill("SIGKILL")
    const ends = await Promise.all(workers.map((running) => running.done))
    const seconds = (Date.now() - started) / 1000
    const files = readdirSync(out).filter((name) => name.endsWith(".png"))
    const onDisk = new Set(files.map((name) => name.replace(/\.png$/, "")))
    const ledger = await sim.ledger()
    const wentAway = ledger.calls.filter((call) => call.clientWentAway).length
    // no faults: every call either ended in a saved image or was one the killed worker had in flight (its
    // answer lost with it: billed if the upstream had answered, not if the kill cut the call)
    const inFlight = ledger.totals.calls - files.length
    const totals = /journal: .*/.exec(ends[1]!.stderr)?.[0] ?? "(no totals line)"
    const made = (stdout: string) =>
      stdout.split("\n").filter((line) => line.includes('"ok":true') && !line.includes('"skipped":true')).length
    console.log(
      `One input, three workers, one killed (60 requests, c=4 each, kill -9 3 s after its first image, which came ${firstImageAfter.toFixed(1)} s after the start; lease 30 s)`,
    )
    console.log(
      `  exits: ${ends.map((end) => end.code ?? "killed").join(", ")}; last worker done after ${seconds.toFixed(1)} s`,
    )
    console.log(
      `  images on disk: ${files.length} files, ${onDisk.size} distinct ids, all 60: ${ids.every((id) => onDisk.has(id))}`,
    )
    console.log(
      `  upstream: ${ledger.totals.calls} calls, ${ledger.totals.billedImages} billed images ($${ledger.totals.billedUsd.toFixed(4)}); the killed worker's calls in flight: ${inFlight} (${wentAway} cut by the kill, unbilled); billed ≤ 60 + in flight: ${ledger.totals.billedImages <= 60 + inFlight}`,
    )
    console.log(
      `  images made: killed worker ${made(ends[0]!.stdout)} before the kill, survivors ${made(ends[1]!.stdout)} + ${made(ends[2]!.stdout)}`,
    )
    console.log(`  survivor's totals: ${totals}`)
    await sim.stop()
  }

  // ------------------------------------------------------------------------------------------------------
  const runs = Number(process.env.PEEL_BENCH_BUDGET_RUNS ?? 20)
  if (runs > 0) {
    const folder = scratch()
    console.log(`One budget ($2.00 a day in Postgres; three workers that would spend ~$8), ${runs} randomised runs`)
    const billed: Array<number> = []
    for (let run = 1; run <= runs; run++) {
      const latencyMs = 100 + Math.floor(Math.random() * 900)
      const sim = await startSimulatorWith(["--latency", `${latencyMs}ms`, "--seed", String(run)])
      const url = await server.database(`budget_${run}`)
      const pipeline = join(folder, `budget-${run}.yaml`)
      writeFileSync(
        pipeline,
        [
          "version: 1",
          "name: one-budget",
          "channels:",
          "  google:",
          "    plugin: google-ai-studio",
          '    baseUrl: "${GEMINI_BASE_URL}"',
          '    apiKey: "${GEMINI_API_KEY}"',
          "state:",
          `  postgres: "${url}"`,
          "stages:",
          "  - budget: { limit: 2.00, window: 1d }",
          "  - resolution: { default: 2K }",
          "  - route: { default: gemini-3-pro-image }",
          "  - generate: { timeout: 60s }",
        ].join("\n"),
      )
      // 60 requests split unevenly over three workers, each with its own input and concurrency
      const cuts = [Math.floor(Math.random() * 30) + 10, Math.floor(Math.random() * 20) + 10]
      const sizes = [cuts[0]!, cuts[1]!, 60 - cuts[0]! - cuts[1]!]
      const workers: Array<Worker> = []
      for (const [index, size] of sizes.entries()) {
        const input = join(folder, `budget-${run}-${index}.jsonl`)
        writeInput(
          input,
          Array.from({ length: Math.max(size, 1) }, (_, item) => `b${run}-${index}-${item}`),
        )
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 500)))
        workers.push(
          worker(
            [
              "run",
              pipeline,
              "--input",
              input,
              "--out",
              join(folder, `out-${run}-${index}`),
              "--concurrency",
              String(1 + Math.floor(Math.random() * 8)),
            ],
            simulatorEnv(sim.url),
          ),
        )
      }
      await Promise.all(workers.map((running) => running.done))
      const ledger = await sim.ledger()
      billed.push(ledger.totals.billedUsd)
      console.log(
        `  run ${String(run).padStart(2)}: latency ${latencyMs} ms, inputs ${sizes.join("/")}: ${ledger.totals.billedImages} billed images, $${ledger.totals.billedUsd.toFixed(4)}${ledger.totals.billedUsd > 2 ? "  OVER" : ""}`,
      )
      await sim.stop()
    }
    console.log(
      `  upstream billed at most $${Math.max(...billed).toFixed(4)} (min $${Math.min(...billed).toFixed(4)}); runs over $2.00: ${billed.filter((usd) => usd > 2).length} of ${runs}`,
    )
  }
} finally {
  await server.close()
}
