/**
 * Stage blocks are decoded strictly, like channel blocks: a misspelled key inside any stage is an error at
 * its own line and column (never silently ignored), and a bad value in `resolution` (a record of sizes) is
 * reported where it stands.
 */
import { rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { type Errors, Pipeline } from "../src/index.ts"

/** Write `lines` next to the fixture plugin (so `./fixture-plugin.ts` resolves), load, and list the problems. */
const problemsOf = async (lines: ReadonlyArray<string>): Promise<ReadonlyArray<string>> => {
  const file = join(import.meta.dirname, "fixtures", `strict-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(file, [...lines, ""].join("\n"))
  try {
    const exit = await Effect.runPromiseExit(Pipeline.load(file, { env: {}, today: "2026-11-25" }))
    if (Exit.isSuccess(exit)) return []
    const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
    if (failure === undefined || failure._tag !== "Fail")
      throw new Error(`expected a failure, got ${String(exit.cause)}`)
    const error = failure.error as Errors.ConfigError
    expect(error._tag).toBe("ConfigError")
    return error.problems
      .filter((problem) => problem.severity === "error")
      .map((problem) => `${problem.line}:${problem.column}: ${problem.message}`)
  } finally {
    rmSync(file, { force: true })
  }
}

const header = ["version: 1", "name: strict-stages", "channels:", "  main: { plugin: ./fixture-plugin.ts }", "stages:"]

describe("stage blocks are strict", () => {
  it("generate: { timout: 90s } is an unknown key at its line and column", async () => {
    const problems = await problemsOf([...header, "  - select: { channels: [main] }", "  - generate: { timout: 90s }"])
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^7:17: unknown key "timout".*did you mean "timeout"/)
  })

  it("select: { chanels: [...] } is an unknown key at its line and column", async () => {
    const problems = await problemsOf([...header, "  - select: { strategy: ordered, chanels: [main] }"])
    expect(problems.some((problem) => /^6:34: unknown key "chanels".*did you mean "channels"/.test(problem))).toBe(true)
  })

  it("route: a misspelled priority is an unknown key at its line and column", async () => {
    const problems = await problemsOf([
      ...header,
      "  - route: { low: gemini-2.5-flash-image, defualt: gemini-3-pro-image }",
      "  - select: { channels: [main] }",
    ])
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^6:43: unknown key "defualt".*did you mean "default"/)
  })

  it("resolution: a value that is not a size is reported at its line and column", async () => {
    const problems = await problemsOf([
      ...header,
      "  - resolution:",
      "      hero: 4K",
      "      print: 8K",
      "  - select: { channels: [main] }",
    ])
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^8:14: .*print/)
  })

  it("every typo in one file is reported in one run", async () => {
    const problems = await problemsOf([
      ...header,
      "  - resolution: { hero: 5K }",
      "  - route: { nromal: gemini-3-pro-image }",
      "  - select: { chanels: [main] }",
      "  - generate: { timout: 90s }",
    ])
    for (const [line, key] of [
      [6, "hero"],
      [7, "nromal"],
      [8, "chanels"],
      [9, "timout"],
    ] as const)
      expect(problems.some((problem) => problem.startsWith(`${line}:`) && problem.includes(key))).toBe(true)
  })
})
