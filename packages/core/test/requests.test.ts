/**
 * The one request reader (`Requests`): JSON Lines → ImageRequests with the request Schema, every problem
 * located as FILE:LINE, duplicates refused (ids that differ only in case too), a byte order mark accepted.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Money, Requests } from "@peel/core"
import { Effect, Result } from "effect"
import { describe, expect, it } from "vitest"

const problemsOf = (text: string, options?: Requests.ParseOptions) => {
  const parsed = Requests.parse(text, "in.jsonl", options)
  if (Result.isSuccess(parsed)) throw new Error("expected problems")
  return parsed.failure.problems.map((problem) => problem.format())
}

describe("Requests.parse", () => {
  it("decodes each line with the Schema, skips blank lines and a byte order mark", () => {
    const parsed = Requests.parse(
      '\uFEFF{"id":"a","prompt":"a fox"}\n\n  \n{"prompt":"a kite","size":"2K"}\n',
      "in.jsonl",
    )
    expect(Result.isSuccess(parsed)).toBe(true)
    if (Result.isSuccess(parsed))
      expect(parsed.success).toEqual([
        { id: "a", prompt: "a fox" },
        { prompt: "a kite", size: "2K" },
      ])
  })

  it("reports every bad line at once, with its line number", () => {
    const problems = problemsOf(
      '{"prompt":"ok"}\nnot json\n{"prompt":"x","size":"9K"}\n{"prompt":"y","colour":"red"}\n',
    )
    expect(problems).toHaveLength(3)
    expect(problems[0]).toBe("in.jsonl:2: not valid JSON (expected one ImageRequest object per line)")
    expect(problems[1]).toMatch(/^in\.jsonl:3: .*size/)
    expect(problems[2]).toMatch(/^in\.jsonl:4: .*colour/)
  })

  it("refuses duplicate ids, also when they differ only in case; estimates may allow them", () => {
    const text = '{"id":"Cover","prompt":"a"}\n{"id":"cover","prompt":"b"}\n{"id":"Cover","prompt":"c"}\n'
    expect(problemsOf(text)).toEqual([
      'in.jsonl:2: duplicate request id "cover" (line 1 has "Cover": ids that differ only in case name the same file on case-insensitive file systems)',
      'in.jsonl:3: duplicate request id "Cover" (first on line 1)',
    ])
    expect(Result.isSuccess(Requests.parse(text, "in.jsonl", { uniqueIds: false }))).toBe(true)
  })

  it("an empty file is a problem of the whole file", () => {
    expect(problemsOf("\n\n")).toEqual(["in.jsonl: no requests (expected one JSON ImageRequest per line)"])
  })
})

describe("Requests.read", () => {
  const problemOf = async (path: string) => {
    const read = await Effect.runPromise(Effect.result(Requests.read(path)))
    if (Result.isSuccess(read)) throw new Error("expected a problem")
    return read.failure.problems.map((problem) => problem.format())
  }

  it("reads a file; a missing file or a folder is one problem naming the path", async () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-requests-"))
    const file = join(folder, "in.jsonl")
    writeFileSync(file, '{"id":"a","prompt":"a fox"}\n{"prompt":"a kite"}\n')
    const read = await Effect.runPromise(Requests.read(file))
    expect(read.map((request) => request.prompt)).toEqual(["a fox", "a kite"])
    expect(await problemOf(join(folder, "nope.jsonl"))).toEqual([`${join(folder, "nope.jsonl")}: file not found`])
    expect(await problemOf(folder)).toEqual([`${folder}: is a folder, not a JSONL file`])
  })
})

describe("Money.format", () => {
  it("writes dollars to four decimals", () => {
    expect(Money.format(0.134)).toBe("$0.1340")
    expect(Money.format(0)).toBe("$0.0000")
    expect(Money.format(12.3456789)).toBe("$12.3457")
  })
})
