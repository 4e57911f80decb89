/**
 * A real `redis-server` for tests and benchmarks: Debian's binary, on a free loopback port, with its own
 * data folder, no persistence, stopped when the test ends (or when this process exits). It can be stopped
 * and started again on the same port mid-test (a store going away and coming back).
 *
 * ```ts
 * const redis = await startRedis()
 * // … redis.url (redis://127.0.0.1:PORT) …
 * await redis.stop()   // the port refuses connections
 * await redis.start()  // back, empty
 * await redis.close()  // gone, folder removed
 * ```
 *
 * Needs `redis-server` on the PATH (`apt-get install redis-server`; `.ci/run` installs it); without it,
 * {@link startRedis} fails with a message saying so.
 *
 * @since 0.5.0
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./internal/freePort.ts"

/** A running (or stopped) redis-server. @category model */
export interface RedisServer {
  readonly url: string
  readonly port: number
  /** Its data folder (removed by {@link RedisServer.close}). */
  readonly directory: string
  /** Whether it is running now. */
  readonly running: () => boolean
  /** Stop it (SIGTERM, wait for the exit): connections are refused until {@link RedisServer.start}. */
  readonly stop: () => Promise<void>
  /** Start it again on the same port (empty: it keeps nothing on disk). */
  readonly start: () => Promise<void>
  /** Stop it for good and remove its folder. */
  readonly close: () => Promise<void>
}

const binary = (): string => {
  const found = spawnSync("redis-server", ["--version"], { encoding: "utf8" })
  if (found.error !== undefined || found.status !== 0)
    throw new Error("redis-server is not installed (apt-get install redis-server); the Redis tests need a real one")
  return "redis-server"
}

const live = new Set<ChildProcess>()
let hooked = false
const hookExit = () => {
  if (hooked) return
  hooked = true
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL")
  })
}

/** Spawn redis-server on `port`; resolves once it accepts connections, rejects if it exits first. */
const spawnOn = (command: string, port: number, directory: string): Promise<ChildProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      command,
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        directory,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        "--loglevel",
        "notice",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    )
    let output = ""
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      if (output.includes("Ready to accept connections")) {
        child.stdout?.off("data", onData)
        child.stdout?.resume()
        child.stderr?.resume()
        child.off("exit", onExit)
        live.add(child)
        child.once("exit", () => live.delete(child))
        resolve(child)
      }
    }
    const onExit = (code: number | null) =>
      reject(new Error(`redis-server exited (${code}) before it was ready:\n${output.slice(-2000)}`))
    child.stdout?.on("data", onData)
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8")
    })
    child.once("exit", onExit)
    child.once("error", reject)
  })

const stopChild = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

/**
 * Start a redis-server on a free loopback port with its own data folder. A port taken between choosing
 * and binding is retried on another.
 *
 * @category constructors
 */
export const startRedis = async (): Promise<RedisServer> => {
  const command = binary()
  hookExit()
  const directory = mkdtempSync(join(tmpdir(), "peel-redis-"))
  let port = 0
  let child: ChildProcess | undefined
  let lastError: unknown
  for (let attempt = 0; attempt < 5 && child === undefined; attempt++) {
    port = await freePort()
    try {
      child = await spawnOn(command, port, directory)
    } catch (error) {
      lastError = error
    }
  }
  if (child === undefined) throw lastError
  let current: ChildProcess | undefined = child
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    directory,
    running: () => current !== undefined,
    stop: async () => {
      if (current === undefined) return
      const stopping = current
      current = undefined
      await stopChild(stopping)
    },
    start: async () => {
      if (current !== undefined) return
      current = await spawnOn(command, port, directory)
    },
    close: async () => {
      if (current !== undefined) await stopChild(current)
      current = undefined
      rmSync(directory, { recursive: true, force: true })
    },
  }
}
