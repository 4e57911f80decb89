/**
 * What the CLI benchmarks share: the simulator in its own process (so its CPU is not charged to the
 * client under test and it does not compete for the client's event loop), the bench pipeline, the
 * baseline's "what any SDK user must do", percentiles, and /proc readers for another process's CPU and
 * memory.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import type { GoogleGenAI } from "@google/genai"

/** The `peel` command from sources, as the monorepo runs it. */
export const sourceBinPath = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

/** The `peel` command's entry point: `PEEL_BENCH_BIN` (a bundle, say) or the sources. */
export const binPath = process.env.PEEL_BENCH_BIN ?? sourceBinPath

/**
 * The `peel` command as published: `PEEL_BENCH_BIN` when set, otherwise the package's bundle (tsdown.config.ts)
 * built now into a temporary folder, removed when the process exits.
 */
export const bundledBinPath = (): string => {
  if (process.env.PEEL_BENCH_BIN !== undefined) return process.env.PEEL_BENCH_BIN
  const out = mkdtempSync(join(tmpdir(), "peel-bench-bundle-"))
  process.once("exit", () => rmSync(out, { recursive: true, force: true }))
  const require = createRequire(import.meta.url)
  const tsdown = join(dirname(require.resolve("tsdown/package.json")), "dist", "run.mjs")
  const built = spawnSync(process.execPath, [tsdown, "--out-dir", out, "--log-level", "error"], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    encoding: "utf8",
  })
  if (built.status !== 0) throw new Error(`bundling peel failed: ${built.stderr}${built.stdout}`)
  return join(out, "bin.mjs")
}

export interface SimulatorProcess {
  readonly url: string
  readonly pid: number
  /** Empty the ledger (and everything else the simulator remembers). */
  readonly reset: () => Promise<void>
  readonly ledgerTotals: () => Promise<{ calls: number; billedImages: number; billedUsd: number }>
  readonly stop: () => Promise<void>
}

/** Start `peel simulate --port 0 --latency 0` as a child process; resolves with its URL (first stdout line). */
export const startSimulator = async (): Promise<SimulatorProcess> => {
  const child: ChildProcess = spawn(process.execPath, [binPath, "simulate", "--port", "0", "--latency", "0"], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.once("line", (line) => {
      const found = /^simulator listening on (http:\/\/\S+)$/.exec(line.trim())
      if (found === null) reject(new Error(`unexpected first line from the simulator: ${line}`))
      else resolve(found[1]!)
    })
    child.once("exit", (code) => reject(new Error(`the simulator exited (${code}) before listening`)))
    child.once("error", reject)
  })
  const stopped = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
    await stopped
  }
  process.once("exit", () => child.kill("SIGKILL"))
  return {
    url,
    pid: child.pid!,
    reset: async () => {
      const response = await fetch(`${url}/_simulator/reset`, { method: "POST" })
      if (!response.ok) throw new Error(`simulator reset: ${response.status}`)
    },
    ledgerTotals: async () => {
      const response = await fetch(`${url}/_simulator/ledger`)
      return ((await response.json()) as { totals: { calls: number; billedImages: number; billedUsd: number } }).totals
    },
    stop,
  }
}

/** A pipeline file for the bench: AI Studio only, Pro, 1K unless the request says otherwise. */
export const writePipeline = (simulatorUrl: string): string => {
  const file = join(tmpdir(), `peel-bench-${process.pid}.yaml`)
  writeFileSync(
    file,
    [
      "version: 1",
      "name: bench",
      "channels:",
      `  google: { plugin: google-ai-studio, baseUrl: "${simulatorUrl}", apiKey: bench-key }`,
      "stages:",
      "  - resolution: { default: 1K }",
      "  - route: { default: gemini-3-pro-image }",
      "  - generate: { timeout: 60s }",
    ].join("\n"),
  )
  return file
}

/**
 * The baseline: what any `@google/genai` user must do for one image — call generateContent, find the
 * image part (skipping thoughts), decode its base64 into bytes.
 */
export const sdkImage = async (
  sdk: GoogleGenAI,
  prompt: string,
  size: string,
  aspectRatio = "1:1",
): Promise<{ readonly bytes: Buffer; readonly mimeType: string }> => {
  const response = await sdk.models.generateContent({
    model: "gemini-3-pro-image",
    contents: prompt,
    config: { responseModalities: ["TEXT", "IMAGE"], imageConfig: { aspectRatio, imageSize: size } },
  })
  const parts = response.candidates?.[0]?.content?.parts ?? []
  const image = parts.findLast((part) => part.thought !== true && part.inlineData?.data !== undefined)
  if (image?.inlineData?.data === undefined) throw new Error("no image in the answer")
  return { bytes: Buffer.from(image.inlineData.data, "base64"), mimeType: image.inlineData.mimeType ?? "image/png" }
}

export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const clockTicks = 100 // USER_HZ on Linux

/** CPU milliseconds (user + system) another process has used so far, from /proc; undefined off Linux. */
export const processCpuMillis = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // Fields after "(comm) ": state is index 0, so utime (field 14) is index 11 and stime index 12.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks
  } catch {
    return undefined
  }
}

/** A process's resident set now and at its peak, in MB, from /proc/PID/status; undefined once it is gone. */
export const processMemory = (pid: number): { readonly rssMb: number; readonly peakMb: number } | undefined => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN)
    return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 }
  } catch {
    return undefined
  }
}
