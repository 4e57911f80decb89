import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Result } from "effect"
import { describe, expect, it, vi } from "vitest"
import * as CallLog from "../src/CallLog.ts"
import * as Writer from "../src/Writer.ts"

const scratch = () => mkdtempSync(join(tmpdir(), "peel-calllog-"))

const line = (n: number, pad = 0): CallLog.CallLogLine => ({
  type: "run",
  time: new Date(1_800_000_000_000 + n).toISOString(),
  runId: `run-${n}${"x".repeat(pad)}`,
  event: "start",
})

/** The log file's size and identity (rotation renames it and starts a new one). */
const onDisk = (path: string) =>
  existsSync(path) ? { size: statSync(path).size, inode: statSync(path).ino } : { size: 0, inode: -1 }

const decodeAll = (text: string) => {
  const lines = text.split("\n")
  expect(lines.at(-1)).toBe("")
  return lines.slice(0, -1).map((raw) => {
    const decoded = CallLog.decode(raw)
    expect(Result.isSuccess(decoded), raw.slice(0, 200)).toBe(true)
    return Result.isSuccess(decoded) ? decoded.success : undefined
  })
}

describe("Writer", () => {
  it("buffers lines and loses none when the Scope closes (creating the log's folder)", async () => {
    const path = join(scratch(), "logs", "today", "calls.jsonl")
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const writer = yield* Writer.scoped({ path, flushIntervalMs: 60_000, handleSignals: false })
          for (let n = 0; n < 100; n++) writer.write(line(n))
          // Buffered, not written yet.
          expect(statSync(path).size).toBe(0)
        }),
      ),
    )
    expect(decodeAll(readFileSync(path, "utf8"))).toHaveLength(100)
  })

  it("flushes on the interval, appends to an existing log and repairs a fragment a killed run left", async () => {
    const path = join(scratch(), "calls.jsonl")
    writeFileSync(path, `${CallLog.encode(line(1))}\n{"type":"attempt","time":"2026-`)
    const writer = Writer.open({ path, flushIntervalMs: 10, handleSignals: false })
    writer.write(line(2))
    // Not closed: only the interval can write the line. Wait for it to appear (however busy the machine is).
    await vi.waitFor(() => expect(CallLog.parse(readFileSync(path, "utf8"), path).lines).toHaveLength(2), {
      timeout: 10_000,
      interval: 10,
    })
    const text = readFileSync(path, "utf8")
    const parsed = CallLog.parse(text, path)
    expect(parsed.lines).toHaveLength(2)
    expect(parsed.problems).toEqual([`${path}:2: ${parsed.problems[0]!.split(": ").slice(1).join(": ")}`])
    writer.close()
  })

  it("rotates by size: FILE, FILE.1, FILE.2 ... up to keep, whole lines in each", () => {
    const path = join(scratch(), "calls.jsonl")
    const writer = Writer.open({ path, maxBytes: 2_000, keep: 2, bufferBytes: 1, handleSignals: false })
    for (let n = 0; n < 100; n++) writer.write(line(n, 20))
    writer.close()
    expect(existsSync(`${path}.1`)).toBe(true)
    expect(existsSync(`${path}.2`)).toBe(true)
    expect(existsSync(`${path}.3`)).toBe(false)
    for (const file of [path, `${path}.1`, `${path}.2`]) {
      expect(statSync(file).size).toBeLessThanOrEqual(2_000)
      decodeAll(readFileSync(file, "utf8"))
    }
    // The newest lines are in FILE.
    const last = decodeAll(readFileSync(path, "utf8")).at(-1)
    expect(last?.runId).toBe(`run-99${"x".repeat(20)}`)
  })

  // A SIGKILL that lands while a flush of several pages is being written can cut that write() short (Linux
  // stops a write between pages for a fatal signal), so the guarantee is: at most one partial line per kill,
  // at the end of what the killed process wrote, and the next writer never glues a line onto it.
  it("a process killed with SIGKILL leaves at most a partial last line, which the next writer closes off", async () => {
    const dir = scratch()
    const path = join(dir, "calls.jsonl")
    const kills = 3
    for (let round = 1; round <= kills; round++) {
      const child = spawn(process.execPath, [join(import.meta.dirname, "writer-child.ts"), path, "400000"], {
        stdio: ["ignore", "pipe", "inherit"],
      })
      await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()))
      // Kill it mid-stream at a different point each round: once the log has grown by round × 40 KB (or rotated).
      const before = onDisk(path)
      await vi.waitFor(
        () => {
          const now = onDisk(path)
          expect(now.size >= before.size + round * 40_000 || (before.inode !== -1 && now.inode !== before.inode)).toBe(
            true,
          )
        },
        { timeout: 20_000, interval: 5 },
      )
      child.kill("SIGKILL")
      await new Promise((resolve) => child.once("close", resolve))
    }
    // The next run opens the log and writes a line: it starts on a line of its own.
    const next = Writer.open({ path, maxBytes: 400_000, keep: 3, handleSignals: false })
    next.write(line(999))
    next.close()
    let whole = 0
    let partial = 0
    for (const file of [path, `${path}.1`, `${path}.2`, `${path}.3`].filter((file) => existsSync(file)))
      for (const raw of readFileSync(file, "utf8").split("\n")) {
        if (raw === "") continue
        if (Result.isSuccess(CallLog.decode(raw))) whole += 1
        else partial += 1
      }
    expect(partial).toBeLessThanOrEqual(kills)
    // Rotation (keep 3) drops the oldest files, so only some of the lines written are left.
    expect(whole).toBeGreaterThan(100)
    const newest = decodeAll(readFileSync(path, "utf8").split("\n").slice(-2).join("\n"))
    expect(newest.at(-1)?.runId).toBe("run-999")
  }, 30_000)
})
