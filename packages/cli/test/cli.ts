/** Helpers to run the `peel` binary as a real child process (Node 24, the same executable as the tests). */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const root = join(import.meta.dirname, "..", "..", "..")
const bin = join(root, "packages", "cli", "src", "bin.ts")

/**
 * What every child starts with. Node's compile cache (`NODE_COMPILE_CACHE`, keyed by each file's content)
 * keeps the stripped and compiled modules between the suites' many `peel` processes: a start loads the
 * whole CLI from source, and without the cache a third of its CPU time went to compiling it again.
 */
const baseEnv = (): Record<string, string> => ({
  PATH: process.env.PATH ?? "",
  NO_COLOR: "1",
  NODE_COMPILE_CACHE: join(tmpdir(), "peel-test-compile-cache"),
})

export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * This test file's work journal folder. A bulk `peel run` with no `--state` of its own journals here, not
 * in the repository's `./.peel`: the test files run at the same time, and a journal shared between them
 * lets one file's runs meet another's. The runs of one file still share theirs (resume, two runs at once).
 */
const stateDir = mkdtempSync(join(tmpdir(), "peel-test-state-"))

const has = (args: ReadonlyArray<string>, flag: string) =>
  args.some((arg) => arg === flag || arg.startsWith(`${flag}=`))

/** `args`, with `--state` set to this file's journal folder for a bulk run that names none. */
const isolated = (args: ReadonlyArray<string>): ReadonlyArray<string> =>
  args[0] === "run" && has(args, "--input") && !has(args, "--state") ? [...args, "--state", stateDir] : args

/** Run `peel ARGS...` from the repo root with `env` added to a minimal environment. */
export const peel = (args: ReadonlyArray<string>, env: Record<string, string> = {}, script = bin): Promise<Finished> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...isolated(args)], {
      cwd: root,
      env: { ...baseEnv(), HOME: process.env.HOME ?? "/tmp", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

/** A running `peel ARGS...`: the child (to send signals), its output so far, and its end. */
export interface Running {
  readonly child: ChildProcess
  readonly output: () => { readonly stdout: string; readonly stderr: string }
  /** Resolves once `stdout` matches `pattern` (or the process ends first). */
  readonly waitForStdout: (pattern: RegExp) => Promise<boolean>
  readonly finished: Promise<Finished>
}

/** Start `peel ARGS...` without waiting for it, to watch its output as it comes and send it signals. */
export const spawnPeel = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Running => {
  const child = spawn(process.execPath, [bin, ...isolated(args)], {
    cwd: root,
    env: { ...baseEnv(), HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  })
  let stdout = ""
  let stderr = ""
  const waiters: Array<() => void> = []
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString()
    for (const wake of waiters.splice(0)) wake()
  })
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const finished = new Promise<Finished>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code) => {
      for (const wake of waiters.splice(0)) wake()
      resolve({ code, stdout, stderr })
    })
  })
  const waitForStdout = (pattern: RegExp): Promise<boolean> =>
    new Promise((resolve) => {
      const check = () => {
        if (pattern.test(stdout)) return resolve(true)
        if (child.exitCode !== null || child.signalCode !== null) return resolve(false)
        waiters.push(check)
      }
      check()
    })
  return { child, output: () => ({ stdout, stderr }), waitForStdout, finished }
}

/** Start `peel simulate --port 0 ...` and wait for its first line; returns the URL and the process. */
export const startSimulator = (args: ReadonlyArray<string> = []): Promise<{ url: string; process: ChildProcess }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "simulate", "--port", "0", ...args], {
      cwd: root,
      env: baseEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    })
    let buffer = ""
    let errors = ""
    child.stderr.on("data", (chunk: Buffer) => {
      errors += chunk.toString()
    })
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString()
      const match = /^simulator listening on (http:\/\/\S+)\n/.exec(buffer)
      if (match !== null) resolve({ url: match[1]!, process: child })
    })
    child.on("close", (code) => reject(new Error(`simulator exited with ${code}: ${errors}`)))
  })

/** The endpoint variables every checked-in pipeline honours, all pointing at one simulator. */
export const simulatorEnv = (url: string): Record<string, string> => ({
  GEMINI_BASE_URL: url,
  GEMINI_API_KEY: "test-gemini-key-SECRET-1",
  VERTEX_BASE_URL: url,
  GOOGLE_CLOUD_PROJECT: "peel-test",
  GOOGLE_CLOUD_LOCATION: "global",
  VERTEX_ACCESS_TOKEN: "test-vertex-token-SECRET-2",
  OPENROUTER_BASE_URL: `${url}/api/v1`,
  OPENROUTER_API_KEY: "test-openrouter-key-SECRET-3",
  PROXY_BASE_URL: `${url}/v1`,
  PROXY_API_KEY: "test-proxy-key-SECRET-4",
})

export const secrets = [
  "test-gemini-key-SECRET-1",
  "test-vertex-token-SECRET-2",
  "test-openrouter-key-SECRET-3",
  "test-proxy-key-SECRET-4",
]
