/**
 * Memory benchmark: bulk runs of 1,500 and 6,000 requests (`PEEL_BENCH_BULK=1500,6000`; 1K Pro images)
 * through the CLI — `peel run PIPELINE --input FILE.jsonl --out DIR --json --concurrency 32`
 * (`PEEL_BENCH_CONCURRENCY`), stdout to /dev/null — against the simulator in its own process, and the
 * same job done by a plain `@google/genai` script (bench/sdk-bulk.ts). The CLI runs twice: from sources
 * (as the monorepo runs it) and as published, one bundle (built here from tsdown.config.ts, or
 * `PEEL_BENCH_BIN`); `PEEL_BENCH_COMMANDS=bundle` (any of sources, bundle, sdk) runs only those. The job's process is polled from
 * /proc: its peak RSS (VmHWM) is noted when a quarter, half and all of the images are on disk, so growth
 * is visible within a run, and the two sizes show it across runs. The simulator's resident set after
 * each job shows its ledger staying bounded. Goal: the published Peel ≤ 150 MB at 6,000 and flat
 * with the count.
 *
 * Run: `npx pnpm --filter @peel/cli bench` (after the overhead benchmark) or `node bench/memory.ts`.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  bundledBinPath,
  processCpuMillis,
  processMemory,
  sourceBinPath,
  startSimulator,
  writePipeline,
} from "./shared.ts"

const totals = (process.env.PEEL_BENCH_BULK ?? "1500,6000").split(",").map((each) => Number(each.trim()))
const concurrency = Number(process.env.PEEL_BENCH_CONCURRENCY ?? 32)
const sdkBulkPath = fileURLToPath(new URL("./sdk-bulk.ts", import.meta.url))

const workDir = mkdtempSync(join(tmpdir(), "peel-bench-memory-"))
/** A JSONL file of `total` requests. */
const inputOf = (total: number): string => {
  const input = join(workDir, `requests-${total}.jsonl`)
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
  return input
}

interface JobResult {
  readonly name: string
  readonly total: number
  readonly seconds: number
  readonly peakAt: ReadonlyArray<number | undefined>
  readonly finalRssMb: number | undefined
  readonly cpuSeconds: number | undefined
  readonly simulatorRssMb: number | undefined
}

/** The two builds of the command: as the monorepo runs it, and as published (what users run). */
const commands = (process.env.PEEL_BENCH_COMMANDS ?? "sources,bundle").split(",").map((each) => each.trim())
const builds: ReadonlyArray<{ readonly name: string; readonly bin: string }> = [
  ...(commands.includes("sources") ? [{ name: "peel run (sources)", bin: sourceBinPath }] : []),
  ...(commands.includes("bundle") ? [{ name: "peel run (bundle)", bin: bundledBinPath() }] : []),
]
const withSdk = commands.includes("sdk") || process.env.PEEL_BENCH_COMMANDS === undefined

const simulator = await startSimulator()
const pipelineFile = writePipeline(simulator.url)

/** Run one bulk job to completion, sampling its memory as images land in `outDir`. */
const job = async (name: string, total: number, args: ReadonlyArray<string>, outDir: string): Promise<JobResult> => {
  const checkpoints = [Math.round(total / 4), Math.round(total / 2), total]
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
    total,
    seconds,
    peakAt,
    finalRssMb: last?.rssMb,
    cpuSeconds: cpuMillis === undefined ? undefined : cpuMillis / 1000,
    simulatorRssMb: processMemory(simulator.pid)?.rssMb,
  }
}

const results: Array<JobResult> = []
try {
  for (const total of totals) {
    const input = inputOf(total)
    for (const [index, build] of builds.entries()) {
      const peelOut = join(workDir, `peel-${total}`)
      results.push(
        await job(
          build.name,
          total,
          [
            build.bin,
            "run",
            pipelineFile,
            "--input",
            input,
            "--out",
            peelOut,
            "--json",
            "--state",
            join(workDir, `state-${index}-${total}`),
            "--concurrency",
            String(concurrency),
          ],
          peelOut,
        ),
      )
      rmSync(peelOut, { recursive: true, force: true })
    }
    if (!withSdk) continue
    const sdkOut = join(workDir, `sdk-${total}`)
    results.push(
      await job(
        "@google/genai script",
        total,
        [sdkBulkPath, simulator.url, input, sdkOut, String(concurrency)],
        sdkOut,
      ),
    )
    rmSync(sdkOut, { recursive: true, force: true })
  }
} finally {
  await simulator.stop()
  rmSync(workDir, { recursive: true, force: true })
  rmSync(pipelineFile, { force: true })
}

const mb = (value: number | undefined) => (value === undefined ? "n/a" : value.toFixed(0))
process.stdout.write(
  `memory: bulk runs of 1K images, concurrency ${concurrency}, simulator in its own process; peak RSS (VmHWM, MB) ` +
    `of the job's process when a quarter, half and all of the images were written (goal: Peel <= 150 MB, flat)\n` +
    `job                      requests   @1/4   @1/2    @all  final RSS MB  wall s   req/s  cpu s  simulator RSS MB\n` +
    results
      .map((result) =>
        [
          result.name.padEnd(22),
          result.total.toLocaleString("en-US").padStart(10),
          result.peakAt.map((value) => mb(value).padStart(6)).join(" "),
          mb(result.finalRssMb).padStart(14),
          result.seconds.toFixed(1).padStart(7),
          (result.total / result.seconds).toFixed(0).padStart(7),
          (result.cpuSeconds === undefined ? "n/a" : result.cpuSeconds.toFixed(1)).padStart(6),
          mb(result.simulatorRssMb).padStart(17),
        ].join(" "),
      )
      .join("\n") +
    "\n",
)
