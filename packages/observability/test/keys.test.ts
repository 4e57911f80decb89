/**
 * Per-key spend in the call log: a request that carries a virtual key's name in its metadata (the gateway
 * sets it) has that name on its attempt and request lines; `Summary.keys` and `Stats.keysText` add it up
 * by key — what `peel stats --by key` prints.
 */
import { VirtualKeys } from "@peel/core"
import { describe, expect, it } from "vitest"
import * as CallLog from "../src/CallLog.ts"
import { attemptLine, requestLine } from "../src/Lines.ts"
import * as Stats from "../src/Stats.ts"
import * as Summary from "../src/Summary.ts"
import { attempt, done, failed, plan } from "./fixtures.ts"

const t0 = Date.parse("2026-11-26T10:00:00.000Z")

/** A request answered from the cache says so. */
const cachedIf = (
  ended: ReturnType<typeof done>,
  attempts: ReadonlyArray<ReturnType<typeof attempt>>,
): ReturnType<typeof done> =>
  ended._tag === "Done" && attempts.every((record) => record.cached === true)
    ? { ...ended, result: { ...ended.result, cached: true } }
    : ended

/** A request made with key `key` (or none): its attempts' lines, then its request line. */
const linesOf = (
  id: string,
  key: string | undefined,
  attempts: ReadonlyArray<ReturnType<typeof attempt>>,
  ok = true,
): Array<CallLog.CallLogLine> => {
  const base = plan(id)
  const keyed = plan(id, {
    request: { ...base.request, ...(key === undefined ? {} : { metadata: { [VirtualKeys.metadataField]: key } }) },
  })
  return [
    ...attempts.map((record) => attemptLine("run", { id, plan: keyed }, record, t0)),
    requestLine("run", keyed, ok ? cachedIf(done(id, attempts), attempts) : failed(id, attempts), t0 + 2000),
  ]
}

describe("per-key spend in the call log", () => {
  it("lines carry the key's name; the summary adds up requests, billed images and spend per key", () => {
    const lines = [
      ...linesOf("a1", "team-a", [attempt({ costUsd: 0.134 })]),
      ...linesOf("a2", "team-a", [attempt({ outcome: "Unavailable", costUsd: 0 }), attempt({ costUsd: 0.134 })]),
      ...linesOf("a3", "team-a", [attempt({ outcome: "ok", costUsd: 0, cached: true })]),
      ...linesOf("b1", "team-b", [attempt({ costUsd: 0.039 })]),
      ...linesOf("b2", "team-b", [attempt({ outcome: "SafetyBlocked", costUsd: 0.01 })], false),
      ...linesOf("c1", undefined, [attempt({ costUsd: 0.24 })]),
    ]
    // through the Schema, as peel stats reads it
    const parsed = CallLog.parse(lines.map(CallLog.encode).join("\n"))
    expect(parsed.problems).toEqual([])
    expect(parsed.lines.filter((line) => line.type === "attempt").map((line) => "key" in line && line.key)).toEqual([
      "team-a",
      "team-a",
      "team-a",
      "team-a",
      "team-b",
      "team-b",
      false,
    ])
    const summary = Summary.summarize(parsed.lines)
    expect(summary.keys).toEqual([
      { key: "team-a", requests: 3, ok: 3, failed: 0, cached: 1, billedImages: 2, spentUsd: 0.268 },
      { key: "team-b", requests: 2, ok: 1, failed: 1, cached: 0, billedImages: 2, spentUsd: 0.049 },
    ])
    // every dollar is in the total; the keyless request only there
    expect(summary.spentUsd).toBeCloseTo(0.268 + 0.049 + 0.24, 6)
    const text = Stats.keysText(summary)
    expect(text.split("\n")).toEqual([
      "key     requests  ok  failed  cached  billed    spent",
      "team-a         3   3       0       1       2  $0.2680",
      "team-b         2   1       1       0       2  $0.0490",
    ])
    expect(JSON.stringify(lines)).not.toContain("secret prompt")
  })

  it("a log without keys says so", () => {
    expect(Stats.keysText(Summary.summarize(linesOf("c1", undefined, [attempt()])))).toMatch(
      /no requests with a virtual key/,
    )
  })
})
