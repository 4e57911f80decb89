/**
 * `peel simulate` in its own process with the given flags (for the resilience, tail and rpm benchmarks): its
 * URL, its ledger, a reset and a stop; the environment that points the checked-in pipelines at it; and the
 * benchmarks' shared request mix.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { Journal, type Request } from "@peel/core"
import { binPath } from "./shared.ts"

export interface LedgerCall {
  readonly outcome: string
  readonly status: number
  readonly latencyMs: number
  readonly clientWentAway: boolean
}

/** What `GET /_simulator/ledger` answers. */
export interface Ledger {
  readonly totals: { readonly calls: number; readonly billedImages: number; readonly billedUsd: number }
  readonly calls: ReadonlyArray<LedgerCall>
}

export interface Simulator {
  readonly url: string
  readonly ledger: () => Promise<Ledger>
  readonly reset: () => Promise<void>
  readonly stop: () => Promise<void>
}

export const startSimulatorWith = async (flags: ReadonlyArray<string>): Promise<Simulator> => {
  const child: ChildProcess = spawn(process.execPath, [binPath, "simulate", "--port", "0", ...flags], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  const kill = () => child.kill("SIGKILL")
  process.once("exit", kill)
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (line) => {
      const found = /^simulator listening on (http:\/\/\S+)$/.exec(line.trim())
      if (found === null) reject(new Error(`unexpected first line from the simulator: ${line}`))
      else resolve(found[1]!)
    })
    child.once("exit", (code) => reject(new Error(`the simulator exited (${code}) before listening`)))
    child.once("error", reject)
  })
  const stopped = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  return {
    url,
    ledger: async () => (await (await fetch(`${url}/_simulator/ledger`)).json()) as never,
    reset: async () => {
      const response = await fetch(`${url}/_simulator/reset`, { method: "POST" })
      if (!response.ok) throw new Error(`simulator reset: ${response.status}`)
    },
    stop: async () => {
      process.removeListener("exit", kill)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      await stopped
    },
  }
}

/** Environment pointing every channel of the checked-in pipelines at the simulator. */
export const simulatorEnv = (url: string): Record<string, string | undefined> => {
  const env: Record<string, string | undefined> = {
    ...process.env,
    GEMINI_BASE_URL: url,
    GEMINI_API_KEY: "bench-gemini-key",
    VERTEX_BASE_URL: url,
    GOOGLE_CLOUD_PROJECT: "peel-bench",
    GOOGLE_CLOUD_LOCATION: "global",
    VERTEX_ACCESS_TOKEN: "bench-vertex-token",
    OPENROUTER_BASE_URL: `${url}/api/v1`,
    OPENROUTER_API_KEY: "bench-openrouter-key",
    PROXY_BASE_URL: `${url}/v1`,
    PROXY_API_KEY: "bench-proxy-key",
  }
  // The pipeline's own defaults, not whatever a shell exported for `pnpm demo`.
  for (const knob of ["PEEL_HEDGE_INITIAL", "PEEL_HEDGE_BUDGET", "PEEL_BREAKER_FAILURES"]) delete env[knob]
  return env
}

/**
 * The benchmarks' mix of uses: 40% thumbnails (1K 1:1), 40% blog/web 2K (16:9, 4:3), 10% hero 4K (21:9), 10%
 * low priority (Nano Banana 2); unique prompts, so the cache never answers.
 */
export const mixedRequest = (label: string, index: number): Request.ImageRequest => {
  const prompt = `${label} ${index}: a lighthouse on a cliff, variation ${index % 97}`
  switch (index % 10) {
    case 0:
    case 1:
    case 2:
    case 3:
      return { id: `r${index}`, prompt, use: "thumbnail" }
    case 4:
    case 5:
      return { id: `r${index}`, prompt, use: "blog", aspectRatio: "16:9" }
    case 6:
    case 7:
      return { id: `r${index}`, prompt, use: "web", aspectRatio: "4:3" }
    case 8:
      return { id: `r${index}`, prompt, use: "hero", aspectRatio: "21:9" }
    default:
      return { id: `r${index}`, prompt, use: "social", priority: "low", aspectRatio: "4:5" }
  }
}

type Attempt = Request.ImageResult["attempts"][number]

/** Whether an attempt was an upstream call (not a refusal, cooling-down skip, cache hit or placeholder). */
export const isCall = (attempt: Attempt): boolean =>
  !Journal.notCalls.has(attempt.outcome) && attempt.cached !== true && attempt.placeholder !== true
