/**
 * The gateway benchmark's servers, each in its own process (so each one's CPU and memory are its own and
 * none competes for the load generator's event loop): started with the line they print once listening,
 * measured from /proc (CPU in clock ticks of 10 ms, resident memory), stopped with SIGTERM.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createWriteStream, openSync, readFileSync } from "node:fs"
import { createInterface } from "node:readline"

export interface Server {
  readonly url: string
  readonly pid: number
  readonly stop: () => Promise<void>
}

/**
 * Spawn `node ARGS`; resolves once a stdout line matches `listening` (its first group is the URL). Its
 * stderr goes to `stderrFile` when given (an access log), else to ours.
 */
export const startServer = async (
  args: ReadonlyArray<string>,
  listening: RegExp,
  stderrFile?: string,
): Promise<Server> => {
  const stderr = stderrFile === undefined ? "inherit" : openSync(stderrFile, "w")
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ["ignore", "pipe", stderr] })
  const kill = () => child.kill("SIGKILL")
  process.once("exit", kill)
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on("line", (line) => {
      const found = listening.exec(line.trim())
      if (found !== null) resolve(found[1]!)
    })
    child.once("exit", (code) =>
      reject(
        new Error(
          `${args.join(" ")} exited (${code}) before listening${stderrFile === undefined ? "" : `: see ${stderrFile}`}`,
        ),
      ),
    )
    child.once("error", reject)
  })
  // Keep draining stdout so the child never blocks on a full pipe; PEEL_BENCH_STDOUT keeps it in a file
  // (e.g. the gateway's `--trace-gc` lines, with PEEL_BENCH_GATEWAY_NODE_FLAGS).
  const keep = process.env.PEEL_BENCH_STDOUT
  if (keep === undefined || keep === "") child.stdout!.resume()
  else child.stdout!.pipe(createWriteStream(keep, { flags: "a" }))
  const stopped = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  return {
    url,
    pid: child.pid!,
    stop: async () => {
      process.removeListener("exit", kill)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      const timer = setTimeout(kill, 10_000)
      await stopped
      clearTimeout(timer)
    },
  }
}

const clockTicks = 100 // USER_HZ on Linux

/** CPU milliseconds (user + system, all threads) a process has used so far. */
export const cpuMillis = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  // After "(comm) ": state is index 0, so utime (field 14) is index 11 and stime index 12.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks
}

/** A process's resident set now, in MB. */
export const rssMb = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN) / 1024
}
