/**
 * `peel simulate` in its own process with the given flags (for the tail and rpm benchmarks): its URL, its
 * ledger, and a stop.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { binPath } from "./shared.ts"

export interface LedgerCall {
  readonly outcome: string
  readonly status: number
  readonly latencyMs: number
  readonly clientWentAway: boolean
}

export interface Simulator {
  readonly url: string
  readonly ledger: () => Promise<{
    readonly totals: { readonly calls: number; readonly billedImages: number; readonly billedUsd: number }
    readonly calls: ReadonlyArray<LedgerCall>
  }>
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
