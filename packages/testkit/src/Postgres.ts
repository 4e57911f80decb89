/**
 * A real Postgres server for tests: the machine's Postgres binaries (Debian's `postgresql-15`, or
 * `PEEL_POSTGRES_BIN`), a fresh data folder in a temporary directory, a free loopback port, the unix socket
 * in the same directory. Postgres refuses to run as root, so when the tests run as root the server runs as
 * the `postgres` user (which owns the temporary directory). `stop` and `start` stop and start the same
 * server on the same port (to test what happens when it goes away mid-run); `close` stops it and deletes
 * its folder.
 *
 * Imports nothing but Node, so any package's tests can use it (core's, through a relative path, without a
 * workspace cycle).
 *
 * @since 0.5.0
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./internal/freePort.ts"

/** A running (or stopped) test server. @category models */
export interface PostgresServer {
  /** `postgres://peel@127.0.0.1:PORT/peel` */
  readonly url: string
  readonly port: number
  /** A new, empty database on this server; its URL. */
  readonly database: (name: string) => Promise<string>
  /** Stop the server (fast shutdown: connections are cut). */
  readonly stop: () => Promise<void>
  /** Start it again, same data, same port. */
  readonly start: () => Promise<void>
  /** Stop it and delete its folder. */
  readonly close: () => Promise<void>
}

/** Where the Postgres binaries are: `PEEL_POSTGRES_BIN`, else the newest `/usr/lib/postgresql/N/bin`. @category accessors */
export const binDir = (): string | undefined => {
  const fromEnv = process.env.PEEL_POSTGRES_BIN
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root)
    .filter((name) => existsSync(join(root, name, "bin", "postgres")))
    .sort((a, b) => Number(b) - Number(a))
  return versions[0] === undefined ? undefined : join(root, versions[0], "bin")
}

/** The uid and gid the server runs as: the `postgres` user when we are root, else ourselves. */
const account = (): { uid: number; gid: number } | undefined => {
  if (process.getuid?.() !== 0) return undefined
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith("postgres:"))
  if (line === undefined) throw new Error("running as root, and there is no postgres user to run Postgres as")
  const [, , uid, gid] = line.split(":")
  return { uid: Number(uid), gid: Number(gid) }
}

/**
 * Start a fresh Postgres on a free loopback port. Throws (with the server's output) when the binaries
 * are missing or it does not start.
 *
 * @category constructors
 */
export const startPostgres = async (): Promise<PostgresServer> => {
  const bin = binDir()
  if (bin === undefined)
    throw new Error(
      "no Postgres binaries: install Debian's postgresql (apt-get install postgresql) or set PEEL_POSTGRES_BIN",
    )
  const user = account()
  const dir = mkdtempSync(join(tmpdir(), "peel-postgres-"))
  if (user !== undefined) chownSync(dir, user.uid, user.gid)
  const data = join(dir, "data")
  const ids = user === undefined ? {} : { uid: user.uid, gid: user.gid }
  execFileSync(
    join(bin, "initdb"),
    ["-D", data, "-U", "peel", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
    { ...ids, cwd: dir, stdio: "pipe" },
  )
  const port = await freePort()
  let child: ChildProcess | undefined

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const server = spawn(
        join(bin, "postgres"),
        [
          "-D",
          data,
          "-p",
          String(port),
          "-k",
          dir,
          "-c",
          "listen_addresses=127.0.0.1",
          "-c",
          "fsync=off",
          "-c",
          "full_page_writes=off",
          "-c",
          "max_connections=200",
        ],
        { ...ids, cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
      )
      child = server
      let output = ""
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes("database system is ready to accept connections")) {
          server.stderr?.off("data", onData)
          server.stderr?.resume()
          resolve()
        }
      }
      server.stderr?.on("data", onData)
      server.stdout?.resume()
      server.once("exit", (code) => reject(new Error(`postgres exited (${code}) before it was ready:\n${output}`)))
    })

  const stop = () =>
    new Promise<void>((resolve) => {
      const server = child
      child = undefined
      if (server === undefined || server.exitCode !== null) return resolve()
      server.once("exit", () => resolve())
      // SIGINT: fast shutdown (open connections are cut, like a server going away)
      server.kill("SIGINT")
    })

  const onExit = () => child?.kill("SIGKILL")
  process.once("exit", onExit)
  await start()
  const url = (name: string) => `postgres://peel@127.0.0.1:${port}/${name}`
  execFileSync(join(bin, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "peel", "peel"], {
    stdio: "pipe",
  })
  return {
    url: url("peel"),
    port,
    database: async (name) => {
      execFileSync(join(bin, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "peel", name], {
        stdio: "pipe",
      })
      return url(name)
    },
    stop,
    start,
    close: async () => {
      await stop()
      process.off("exit", onExit)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
