/**
 * Memory benchmark: a bulk run of `PEEL_BENCH_BULK` requests (default 10,000; 1K Pro images) through the
 * CLI — `peel run PIPELINE --input FILE.jsonl --out DIR --json --concurrency 16`, stdout to /dev/null —
 * against the simulator in its own process, and the same job done by a plain `@google/genai` script
 * (bench/sdk-bulk.ts). The job's process is polled from /proc: its peak RSS (VmHWM) is noted when a
 * quarter, half and all of the images are on disk, so growth is visible. The simulator's resident set
 * after each job shows its ledger staying bounded. Goal: Peel ≤ 150 MB and flat.
 *
 * Run: `npx pnpm --filter @peel/cli bench` (after the overhead benchmark) or `node bench/memory.ts`.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { binPath, processCpuMillis, processMemory, startSimulator, writePipeline } from "./shared.ts"

const total = Number(process.env.PEEL_BENCH_BULK ?? 10_000)
const concurrency = 16
const checkpoints = [Math.round(total / 4), Math.round(total / 2), total]
const sdkBulkPath = fileURLToPath(new URL("./sdk-bulk.ts", import.meta.url))

const workDir = mkdtempSync(join(tmpdir(), "peel-bench-memory-"))
const input = join(workDir, "requests.jsonl")
writeFileSync(
  input,
  Array.from({ length: total }, (_, index) =>
    JSON.stringify({
      id: `r${String(index).padStart(6, "0")}`,
      prompt: `bench prompt ${index % 12} #${index}`,
      size: "1K",
      aspectRatio: "1:1",
    }),
  ).join("\n"),
)

interface JobResult {
  readonly name: string
  readonly seconds: number
  readonly peakAt: ReadonlyArray<number | undefined>
  readonly finalRssMb: number | undefined
  readonly cpuSeconds: number | undefined
  readonly simulatorRssMb: number | undefined
}

const simulator = await startSimulator()
const pipelineFile = writePipeline(simulator.url)

/** Run one bulk job to completion, sampling its memory as images land in `outDir`. */
const job = async (name: string, args: ReadonlyArray<string>, outDir: string): Promise<JobResult> => {
  await simulator.reset()
  const started = performance.now()
  // stdout to /dev/null; stderr kept for a failure's message.
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] })
  let stderr = ""
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-4000)
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const pid = child.pid!
  const peakAt: Array<number | undefined> = checkpoints.map(() => undefined)
  let last: { rssMb: number; peakMb: number } | undefined
  let cpuMillis: number | undefined
  let done = false
  void exited.then(() => {
    done = true
  })
  while (!done) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    const memory = processMemory(pid)
    const cpu = processCpuMillis(pid)
    if (memory === undefined || Number.isNaN(memory.peakMb)) continue
    last = memory
    cpuMillis = cpu ?? cpuMillis
    let written = 0
    try {
      written = readdirSync(outDir).filter((file) => file.endsWith(".png")).length
    } catch {}
    checkpoints.forEach((checkpoint, index) => {
      if (written >= checkpoint && peakAt[index] === undefined) peakAt[index] = memory.peakMb
    })
  }
  const code = await exited
  const seconds = (performance.now() - started) / 1000
  if (code !== 0) throw new Error(`${name} exited with ${code}:\n${stderr}`)
  // The last images may land between the final sample and exit: its last peak reading is the whole run's.
  for (const index of checkpoints.keys()) peakAt[index] ??= last?.peakMb
  const upstream = await simulator.ledgerTotals()
  if (upstream.calls !== total) throw new Error(`${name}: expected ${total} upstream calls, saw ${upstream.calls}`)
  return {
    name,
    seconds,
    peakAt,
    finalRssMb: last?.rssMb,
    cpuSeconds: cpuMillis === undefined ? undefined : cpuMillis / 1000,
    simulatorRssMb: processMemory(simulator.pid)?.rssMb,
  }
}

const results: Array<JobResult> = []
try {
  const peelOut = join(workDir, "peel")
  results.push(
    await job(
      "peel run (CLI)",
      [
        binPath,
        "run",
        pipelineFile,
        "--input",
        input,
        "--out",
        peelOut,
        "--json",
        "--concurrency",
        String(concurrency),
      ],
      peelOut,
    ),
  )
  const sdkOut = join(workDir, "sdk")
  results.push(
    await job("@google/genai script", [sdkBulkPath, simulator.url, input, sdkOut, String(concurrency)], sdkOut),
  )
} finally {
  await simulator.stop()
  rmSync(workDir, { recursive: true, force: true })
  rmSync(pipelineFile, { force: true })
}

const mb = (value: number | undefined) => (value === undefined ? "n/a" : value.toFixed(0))
const header = checkpoints.map((checkpoint) => `@${checkpoint.toLocaleString("en-US")}`.padStart(8)).join("")
process.stdout.write(
  `memory: ${total.toLocaleString("en-US")} 1K images, concurrency ${concurrency}, simulator in its own process; ` +
    `peak RSS (VmHWM) of the job's process when that many images were written (goal: Peel <= 150 MB, flat)\n` +
    `job                     ${header}  final RSS MB  wall s   req/s  cpu s  simulator RSS MB\n` +
    results
      .map((result) =>
        [
          result.name.padEnd(22),
          result.peakAt.map((value) => mb(value).padStart(8)).join(""),
          mb(result.finalRssMb).padStart(13),
          result.seconds.toFixed(1).padStart(7),
          (total / result.seconds).toFixed(0).padStart(7),
          (result.cpuSeconds === undefined ? "n/a" : result.cpuSeconds.toFixed(1)).padStart(6),
          mb(result.simulatorRssMb).padStart(17),
        ].join(" "),
      )
      .join("\n") +
    "\n",
)
