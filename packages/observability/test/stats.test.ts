import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import * as CallLog from "../src/CallLog.ts"
import * as Stats from "../src/Stats.ts"
import * as Summary from "../src/Summary.ts"

const attemptLine = (n: number, overrides: Partial<CallLog.AttemptLine> = {}): CallLog.AttemptLine => ({
  type: "attempt",
  time: new Date(Date.parse("2026-11-26T10:00:00Z") + n * 1000).toISOString(),
  runId: "r",
  requestId: `q${n}`,
  promptHash: "h",
  channel: n % 2 === 0 ? "google" : "proxy",
  model: "gemini-3-pro-image",
  size: "2K",
  outcome: "ok",
  startedAt: new Date(Date.parse("2026-11-26T10:00:00Z") + n * 1000 - 500).toISOString(),
  latencyMs: 500,
  costUsd: n % 2 === 0 ? 0.134 : 0.05,
  ...overrides,
})

describe("Stats.read and Summary", () => {
  it("reads a log and its rotated parts, skips what is not a call-log line, and says which files are missing", () => {
    const dir = mkdtempSync(join(tmpdir(), "peel-stats-"))
    const path = join(dir, "calls.jsonl")
    writeFileSync(`${path}.1`, `${CallLog.encode(attemptLine(1))}\n${CallLog.encode(attemptLine(2))}\n`)
    writeFileSync(path, `${CallLog.encode(attemptLine(3))}\nnot json\n{"type":"attempt","ti`)
    const read = Stats.read([path, `${path}.1`, join(dir, "missing.jsonl")])
    expect(read.lines).toHaveLength(3)
    expect(read.problems.map((problem) => problem.split(": ")[0])).toEqual([`${path}:2`, `${path}:3`])
    expect(read.unreadable).toEqual([`${join(dir, "missing.jsonl")}: file not found`])
  })

  it("adds up calls, billed images, dollars and errors, and buckets them over time", () => {
    const lines: Array<CallLog.CallLogLine> = [
      ...Array.from({ length: 60 }, (_, n) => attemptLine(n)),
      attemptLine(60, { outcome: "Unavailable", status: 503, costUsd: 0 }),
      attemptLine(61, { outcome: "Unsupported", latencyMs: 0, costUsd: 0 }),
      attemptLine(62, { outcome: "CircuitOpen", latencyMs: 0, costUsd: 0 }),
      attemptLine(63, { outcome: "ok", cached: true, latencyMs: 1, costUsd: 0 }),
    ]
    const summary = Summary.summarize(lines)
    expect(summary.calls).toBe(61)
    expect(summary.billedImages).toBe(60)
    expect(summary.spentUsd).toBeCloseTo(30 * 0.134 + 30 * 0.05, 6)
    expect(summary.errorsByTag).toEqual({ Unavailable: 1 })
    expect(summary.spendByChannel).toEqual({ google: 4.02, proxy: 1.5 })
    expect(summary.bucketMs).toBe(5_000)
    expect(summary.buckets.reduce((sum, bucket) => sum + bucket.calls, 0)).toBe(61)
    expect(summary.channels.find((channel) => channel.channel === "google")?.latency).toEqual({
      count: 31,
      p50: 500,
      p99: 500,
    })
  })
})
