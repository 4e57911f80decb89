/**
 * Issue 11, bulk `peel run` and the work journal: a real-time bulk run killed with `kill -9` and run again
 * makes only what is missing and reports the totals of every run from the journal (equal to what the
 * upstream billed); batch requests in a bulk run go to batch jobs (the run says which job holds which),
 * real-time ones their own way; batch work without a batch channel draws a warning.
 */
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Pricing } from "@peel/core"
import { Simulator } from "@peel/simulator"
import { afterAll, describe, expect, it, vi } from "vitest"
import { peel, spawnPeel } from "./cli.ts"

/** Each test starts the CLI two or three times; on a loaded machine one may take seconds to start. */
vi.setConfig({ testTimeout: 180_000 })

const simulators: Array<Simulator.Handle> = []
afterAll(async () => {
  await Promise.all(simulators.map((simulator) => simulator.stop()))
})

const scratch = () => mkdtempSync(join(tmpdir(), "peel-run-journal-"))
const lines = (text: string) =>
  text
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { id: string; ok: boolean; skipped?: boolean; costUsd: number })

describe.concurrent("peel run --input with the work journal", () => {
  it("killed with kill -9 and run again: only what is missing is made; the journal's totals equal the bill", async () => {
    const sim = await Simulator.start({ port: 0, seed: 4, latency: "400ms" })
    simulators.push(sim)
    const env = { GEMINI_BASE_URL: sim.url, GEMINI_API_KEY: "run-journal-key-SECRET-5" }
    const folder = scratch()
    const input = join(folder, "requests.jsonl")
    const ids = Array.from({ length: 8 }, (_, index) => `rt-${index + 1}`)
    writeFileSync(input, ids.map((id) => JSON.stringify({ id, prompt: `a glass bird, ${id}` })).join("\n"))
    const args = [
      "run",
      "pipelines/google-direct.yaml",
      "--input",
      input,
      "--concurrency",
      "2",
      "--out",
      join(folder, "out"),
      "--state",
      join(folder, "state"),
      "--json",
    ]
    const first = spawnPeel(args, env)
    expect(await first.waitForStdout(/("ok":true[\s\S]*){3}/)).toBe(true)
    first.child.kill("SIGKILL")
    const killed = await first.finished
    expect(killed.code).toBeNull()
    const madeFirst = lines(killed.stdout).filter((line) => line.ok && line.skipped !== true)
    expect(madeFirst.length).toBeGreaterThanOrEqual(3)

    const second = await peel(args, env)
    expect(second.code, second.stderr).toBe(0)
    const rerun = lines(second.stdout)
    const skipped = rerun.filter((line) => line.skipped === true).map((line) => line.id)
    const madeSecond = rerun.filter((line) => line.ok && line.skipped !== true)
    // Everything the killed run saved is skipped (an image saved just before the kill too); only the rest is made.
    for (const line of madeFirst) expect(skipped).toContain(line.id)
    expect(madeSecond.length).toBe(ids.length - skipped.length)
    expect(readdirSync(join(folder, "out")).filter((name) => name.endsWith(".png")).length).toBe(ids.length)
    // One billed image per request — plus, at most, the requests in flight at the kill whose answers were
    // lost with the process (billed upstream, never saved): the re-run says so instead of hiding it.
    const ledger = sim.ledger().totals
    const lost = ledger.billedImages - ids.length
    expect(lost).toBeGreaterThanOrEqual(0)
    expect(lost).toBeLessThanOrEqual(2)
    if (lost > 0) expect(second.stderr).toMatch(/request\(s\) were in flight when an earlier run stopped/)
    // The journal's totals over both runs: every saved image's cost, which is the bill without the lost ones.
    const journal = /journal: 8 of 8 done, 0 failed; spent \$(\d+\.\d+) on this input in all runs/.exec(second.stderr)
    expect(journal, second.stderr).not.toBeNull()
    const price = Pricing.expectedCost("gemini-3-pro-image", "2K")
    expect(Number(journal![1])).toBeCloseTo(ledger.billedUsd - lost * price, 2)
    const printed = [...madeFirst, ...madeSecond].reduce((sum, line) => sum + line.costUsd, 0)
    expect(Number(journal![1])).toBeGreaterThanOrEqual(printed - 0.0001)
  })

  it("a mixed input: batch requests go to a job (the run says which holds which), the rest in real time", async () => {
    const sim = await Simulator.start({ port: 0, seed: 6, batch: { runningAfterMs: 100, doneAfterMs: 600 } })
    simulators.push(sim)
    const env = { GEMINI_BASE_URL: sim.url, GEMINI_API_KEY: "run-journal-key-SECRET-6" }
    const folder = scratch()
    const input = join(folder, "requests.jsonl")
    writeFileSync(
      input,
      [
        { id: "now-1", prompt: "a kite" },
        { id: "later-1", prompt: "a river", urgency: "batch" },
        { id: "later-2", prompt: "a bridge", urgency: "batch" },
        { id: "now-2", prompt: "a lamp" },
      ]
        .map((line) => JSON.stringify(line))
        .join("\n"),
    )
    const args = [
      "run",
      "pipelines/bulk.yaml",
      "--input",
      input,
      "--out",
      join(folder, "out"),
      "--state",
      join(folder, "state"),
      "--poll-every",
      "100ms",
    ]
    const result = await peel(args, env)
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(
      /job \S+ \(batches\/\S+, gemini-3-pro-image\): 2 request\(s\) sent — later-1, later-2/,
    )
    expect(
      readdirSync(join(folder, "out"))
        .filter((name) => name.endsWith(".png"))
        .sort(),
    ).toEqual(["later-1.png", "later-2.png", "now-1.png", "now-2.png"])
    const billed = sim.ledger().billed
    expect(billed.filter((bill) => bill.tier === "batch").length).toBe(2)
    expect(billed.filter((bill) => bill.tier === "standard").length).toBe(2)
    const expected =
      2 * Pricing.expectedCost("gemini-3-pro-image", "2K") +
      2 * Pricing.expectedCost("gemini-3-pro-image", "2K", "batch")
    expect(sim.ledger().totals.billedUsd).toBeCloseTo(expected, 2)
    expect(result.stderr).toContain(
      `journal: 4 of 4 done, 0 failed; spent $${sim.ledger().totals.billedUsd.toFixed(4)}`,
    )
    // Again: nothing is made, nothing is sent.
    const again = await peel(args, env)
    expect(again.code, again.stderr).toBe(0)
    expect(sim.ledger().totals.billedImages).toBe(4)
  })

  it("batch work in a pipeline without a batch channel draws a warning and is made in real time", async () => {
    const sim = await Simulator.start({ port: 0, seed: 7 })
    simulators.push(sim)
    const folder = scratch()
    const result = await peel(
      [
        "run",
        "pipelines/google-direct.yaml",
        "--prompt",
        "a lantern",
        "--urgency",
        "batch",
        "--out",
        join(folder, "out"),
        "--state",
        join(folder, "state"),
      ],
      { GEMINI_BASE_URL: sim.url, GEMINI_API_KEY: "run-journal-key-SECRET-7" },
    )
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).toContain(
      "ask for urgency: batch, but no channel of pipelines/google-direct.yaml takes batch work",
    )
    expect(sim.ledger().billed.map((bill) => bill.tier)).toEqual(["standard"])
  })
})
