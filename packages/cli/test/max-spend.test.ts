/**
 * `peel run … --max-spend USD`: the run stops starting requests when the next one could pass the cap, the
 * summary says so, the simulator's bill stays under the cap, and a bad value is a usage error before
 * anything is spent.
 */
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { peel, simulatorEnv, startSimulator } from "./cli.ts"

let simulator: { url: string; process: ChildProcess }
beforeAll(async () => {
  simulator = await startSimulator(["--seed", "5"])
})
afterAll(() => {
  simulator.process.kill("SIGINT")
})

const ledger = async () =>
  (
    (await (await fetch(`${simulator.url}/_simulator/ledger`)).json()) as {
      totals: { calls: number; billedUsd: number }
    }
  ).totals

const requests = (count: number) => {
  const run = Math.random().toString(36).slice(2, 10)
  const folder = mkdtempSync(join(tmpdir(), "peel-maxspend-"))
  const file = join(folder, "requests.jsonl")
  writeFileSync(
    file,
    Array.from({ length: count }, (_, index) =>
      // Ids and prompts unique to this run: nothing from an earlier run (work journal, cache) applies.
      JSON.stringify({ id: `m${index}-${run}`, prompt: `a kite number ${index} (${run})` }),
    ).join("\n"),
  )
  return { file, out: join(folder, "out") }
}

describe("peel run --max-spend", () => {
  it("stops starting requests when the next could pass the cap; the summary says so; the bill stays under it", async () => {
    await fetch(`${simulator.url}/_simulator/reset`, { method: "POST" })
    const { file, out } = requests(12)
    const { code, stdout, stderr } = await peel(
      [
        "run",
        "pipelines/google-direct.yaml",
        "--input",
        file,
        "--out",
        out,
        "--concurrency",
        "3",
        "--max-spend",
        "0.5",
      ],
      simulatorEnv(simulator.url),
    )
    const billed = await ledger()
    // Pro 2K at Google's price is about $0.136 a call (reserved: $0.141): three fit under $0.50, a fourth could not.
    expect(billed.calls).toBe(3)
    expect(billed.billedUsd).toBeLessThanOrEqual(0.5)
    expect(code).toBe(1)
    expect(stdout).toMatch(/stopped by --max-spend \$0\.50/)
    expect(stdout).toMatch(/3 made, 0 skipped, 0 failed, 9 not started/)
    expect(stderr).not.toContain("SECRET")
  }, 60_000)

  it("with --json the summary goes to stderr, and every line's costUsd adds up to the bill", async () => {
    await fetch(`${simulator.url}/_simulator/reset`, { method: "POST" })
    const { file, out } = requests(6)
    const { code, stdout, stderr } = await peel(
      ["run", "pipelines/google-direct.yaml", "--input", file, "--out", out, "--max-spend", "0.3", "--json"],
      simulatorEnv(simulator.url),
    )
    const lines = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { costUsd: number })
    const billed = await ledger()
    expect(lines).toHaveLength(2)
    expect(lines.reduce((sum, line) => sum + line.costUsd, 0)).toBeCloseTo(billed.billedUsd, 9)
    expect(billed.billedUsd).toBeLessThanOrEqual(0.3)
    expect(stderr).toMatch(/stopped by --max-spend \$0\.30/)
    expect(code).toBe(1)
  }, 60_000)

  it("refuses a cap that is not a positive amount before anything is spent", async () => {
    const { file, out } = requests(1)
    for (const value of ["0", "-1", "lots"]) {
      const { code, stderr } = await peel(
        ["run", "pipelines/google-direct.yaml", "--input", file, "--out", out, "--max-spend", value],
        simulatorEnv(simulator.url),
      )
      expect(code).toBe(2)
      expect(stderr).toContain("--max-spend")
    }
  }, 60_000)
})
