/**
 * Issue 7, "never pay for an image and then throw it away": everything `peel run` must refuse before the
 * first paid call (an unusable --out folder, a bad --concurrency, bad input files), resume by what a
 * request asks for rather than by file name, and a graceful stop on SIGINT/SIGTERM that saves every image
 * the upstream billed.
 */
import type { ChildProcess } from "node:child_process"
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { peel, simulatorEnv, spawnPeel, startSimulator } from "./cli.ts"

let simulator: { url: string; process: ChildProcess }
/** Every answer takes 300 ms, so a signal lands while requests are in flight. */
let slow: { url: string; process: ChildProcess }
beforeAll(async () => {
  ;[simulator, slow] = await Promise.all([
    startSimulator(["--seed", "1"]),
    startSimulator(["--seed", "1", "--latency", "300ms"]),
  ])
}, 60_000)
afterAll(() => {
  simulator.process.kill("SIGINT")
  slow.process.kill("SIGINT")
})

const scratch = () => mkdtempSync(join(tmpdir(), "peel-hardening-"))

interface Totals {
  readonly calls: number
  readonly billedImages: number
  readonly billedUsd: number
}
const totals = async (url: string): Promise<Totals> =>
  ((await (await fetch(`${url}/_simulator/ledger`)).json()) as { totals: Totals }).totals

const jsonl = (requests: ReadonlyArray<object>): string =>
  `${requests.map((line) => JSON.stringify(line)).join("\n")}\n`

const writeInput = (folder: string, requests: ReadonlyArray<object>, name = "requests.jsonl"): string => {
  const path = join(folder, name)
  writeFileSync(path, jsonl(requests))
  return path
}

const images = (folder: string): ReadonlyArray<string> => readdirSync(folder).filter((name) => name.endsWith(".png"))

const lines = (text: string): ReadonlyArray<string> => text.split("\n").filter((line) => line.trim() !== "")

const pipeline = "pipelines/google-direct.yaml"

/** Root ignores folder permissions, so for root the unwritable folder is /proc (a folder nobody can write). */
const isRoot = process.getuid?.() === 0
const unwritableFolder = (): string => {
  if (isRoot) return "/proc"
  const folder = join(scratch(), "read-only")
  mkdirSync(folder)
  chmodSync(folder, 0o555)
  return folder
}

describe("peel run --out: the folder is proven writable before the first paid call", () => {
  const cases: ReadonlyArray<readonly [string, () => string]> = [
    [
      "a regular file",
      () => {
        const path = join(scratch(), "not-a-folder")
        writeFileSync(path, "x")
        return path
      },
    ],
    [isRoot ? "a folder nobody may write (/proc, as root)" : "a read-only folder (chmod 555)", unwritableFolder],
    ["a path under /proc", () => "/proc/xyz"],
  ]
  for (const [name, make] of cases) {
    it(`exits 2 with one line and zero upstream calls for ${name}`, async () => {
      const out = make()
      const input = writeInput(scratch(), [{ prompt: "a fox" }, { prompt: "a hare" }])
      const before = await totals(simulator.url)
      const { code, stdout, stderr } = await peel(
        ["run", pipeline, "--input", input, "--out", out],
        simulatorEnv(simulator.url),
      )
      expect(lines(stderr)).toHaveLength(1)
      expect(stderr).toContain(out)
      expect(code).toBe(2)
      expect(stdout).toBe("")
      expect((await totals(simulator.url)).calls).toBe(before.calls)
    })
  }
})

describe("peel run --concurrency", () => {
  for (const value of ["0", "-1", "100000"]) {
    it(`refuses ${value} with one line (exit 2) and spends nothing`, async () => {
      const before = await totals(simulator.url)
      const input = writeInput(scratch(), [{ prompt: "a fox" }])
      const { code, stderr } = await peel(
        ["run", pipeline, "--input", input, "--out", scratch(), "--concurrency", value],
        simulatorEnv(simulator.url),
      )
      expect(lines(stderr)).toHaveLength(1)
      expect(stderr).toContain("--concurrency")
      expect(stderr).toContain("256")
      expect(code).toBe(2)
      expect((await totals(simulator.url)).calls).toBe(before.calls)
    })
  }
})

describe("peel run --input: bad input is refused with one located line, before spending", () => {
  it("names the path when --input is a folder", async () => {
    const folder = scratch()
    const { code, stderr } = await peel(
      ["run", pipeline, "--input", folder, "--out", scratch()],
      simulatorEnv(simulator.url),
    )
    expect(lines(stderr)).toHaveLength(1)
    expect(stderr).toContain(folder)
    expect(stderr).toContain("folder")
    expect(code).toBe(2)
  })

  it("accepts a UTF-8 byte order mark on line 1", async () => {
    const folder = scratch()
    const input = join(folder, "bom.jsonl")
    writeFileSync(input, `\uFEFF${jsonl([{ id: "bom", prompt: "a fox" }])}`)
    const { code, stderr } = await peel(
      ["run", pipeline, "--input", input, "--out", folder],
      simulatorEnv(simulator.url),
    )
    expect(stderr).toBe("")
    expect(code).toBe(0)
    expect(existsSync(join(folder, "bom.png"))).toBe(true)
  })

  it("reports ids that differ only in case as duplicates (they collide on case-insensitive file systems)", async () => {
    const folder = scratch()
    const input = writeInput(folder, [
      { id: "CON", prompt: "a fox" },
      { id: "con", prompt: "a hare" },
    ])
    const before = await totals(simulator.url)
    const { code, stderr } = await peel(
      ["run", pipeline, "--input", input, "--out", folder],
      simulatorEnv(simulator.url),
    )
    expect(lines(stderr)).toHaveLength(1)
    expect(stderr).toContain(`${input}:2: duplicate request id "con"`)
    expect(stderr).toContain("line 1")
    expect(code).toBe(2)
    expect((await totals(simulator.url)).calls).toBe(before.calls)
  })
})

describe("peel run --json: every line carries costUsd", () => {
  it("on made, failed and skipped lines, and the made and failed ones add up to the upstream's bill", async () => {
    // Flash answers every call with a safety block: a failure the upstream answered (and may bill).
    const blocking = await startSimulator(["--seed", "1", "--faults", "safety@gemini-2.5-flash-image=1"])
    try {
      const folder = scratch()
      const input = writeInput(folder, [
        { id: "made", prompt: "a fox" },
        { id: "blocked", prompt: "a hare", model: "gemini-2.5-flash-image" },
      ])
      const env = simulatorEnv(blocking.url)
      const first = await peel(["run", pipeline, "--input", input, "--out", folder, "--json"], env)
      const billed = await totals(blocking.url)
      expect(first.code).toBe(1)
      const results = lines(first.stdout).map((line) => JSON.parse(line))
      expect(results.map((result) => [result.id, result.ok])).toEqual(
        expect.arrayContaining([
          ["made", true],
          ["blocked", false],
        ]),
      )
      for (const result of results) expect(typeof result.costUsd).toBe("number")
      const spent = results.reduce((sum, result) => sum + result.costUsd, 0)
      expect(spent).toBeCloseTo(billed.billedUsd, 4)

      const again = await peel(["run", pipeline, "--input", input, "--out", folder, "--json"], env)
      const skipped = lines(again.stdout)
        .map((line) => JSON.parse(line))
        .find((result) => result.id === "made")
      expect(skipped).toMatchObject({ id: "made", ok: true, skipped: true, costUsd: 0 })
    } finally {
      blocking.process.kill("SIGINT")
    }
  }, 90_000)
})

describe("peel run: resume by what was asked, not by file name", () => {
  it("makes an image again when the request behind an existing id changed, and says so", async () => {
    const folder = scratch()
    const env = simulatorEnv(simulator.url)
    const input = writeInput(folder, [{ id: "cover", prompt: "a lighthouse" }])
    expect((await peel(["run", pipeline, "--input", input, "--out", folder, "--json"], env)).code).toBe(0)
    const record = join(folder, "cover.png.json")
    const firstHash = JSON.parse(readFileSync(record, "utf8")).requestHash

    const unchanged = await totals(simulator.url)
    const same = await peel(["run", pipeline, "--input", input, "--out", folder, "--json"], env)
    expect(JSON.parse(same.stdout)).toMatchObject({ id: "cover", skipped: true })
    expect((await totals(simulator.url)).calls).toBe(unchanged.calls)

    writeInput(folder, [{ id: "cover", prompt: "a lighthouse at night" }])
    const before = await totals(simulator.url)
    const changed = await peel(["run", pipeline, "--input", input, "--out", folder, "--json"], env)
    expect(changed.code).toBe(0)
    expect(changed.stderr).toContain("cover")
    expect(changed.stderr).toContain("changed")
    const result = JSON.parse(changed.stdout)
    expect(result.skipped).toBeUndefined()
    expect(result.file).toBe(join(folder, "cover.png"))
    expect((await totals(simulator.url)).billedImages).toBe(before.billedImages + 1)
    expect(JSON.parse(readFileSync(record, "utf8")).requestHash).not.toBe(firstHash)
  }, 90_000)
})

describe("peel run: a signal stops a bulk run gracefully", () => {
  const bulk = (folder: string, count: number): string =>
    writeInput(
      folder,
      Array.from({ length: count }, (_, index) => ({ id: `image-${index}`, prompt: `picture number ${index}` })),
    )

  it("SIGINT: stops starting requests, saves the ones in flight, prints the summary and exits 130", async () => {
    const folder = scratch()
    const input = bulk(folder, 30)
    const before = await totals(slow.url)
    const running = spawnPeel(
      ["run", pipeline, "--input", input, "--out", folder, "--concurrency", "3"],
      simulatorEnv(slow.url),
    )
    // Rows are printed as requests finish, not kept for a table at the end.
    const streamed = await running.waitForStdout(/image-\d+\s+ok\s/)
    expect(streamed).toBe(true)
    running.child.kill("SIGINT")
    const { code, stdout, stderr } = await running.finished
    expect(code).toBe(130)
    expect(stderr).toContain("SIGINT")
    const summary = lines(stdout).at(-1)!
    expect(summary).toMatch(
      /^interrupted \(SIGINT\): \d+ made, 0 skipped, 0 failed, \d+ not started; spent \$\d+\.\d{4}$/,
    )
    const made = Number(/(\d+) made/.exec(summary)![1])
    const notStarted = Number(/(\d+) not started/.exec(summary)![1])
    expect(made).toBeGreaterThan(0)
    expect(notStarted).toBeGreaterThan(0)
    expect(made + notStarted).toBe(30)
    const billed = (await totals(slow.url)).billedImages - before.billedImages
    expect(images(folder)).toHaveLength(billed)
    expect(billed).toBe(made)
  })

  it("SIGTERM with --json: JSON lines on stdout, the summary on stderr, exit 143, every billed image on disk", async () => {
    const folder = scratch()
    const input = bulk(folder, 30)
    const before = await totals(slow.url)
    const running = spawnPeel(
      ["run", pipeline, "--input", input, "--out", folder, "--concurrency", "4", "--json"],
      simulatorEnv(slow.url),
    )
    expect(await running.waitForStdout(/"ok":true/)).toBe(true)
    running.child.kill("SIGTERM")
    const { code, stdout, stderr } = await running.finished
    expect(code).toBe(143)
    const results = lines(stdout).map((line) => JSON.parse(line))
    for (const result of results) {
      expect(result.ok).toBe(true)
      expect(existsSync(result.file)).toBe(true)
    }
    expect(stderr).toMatch(/interrupted \(SIGTERM\): \d+ made, 0 skipped, 0 failed, \d+ not started; spent \$/)
    const billed = (await totals(slow.url)).billedImages - before.billedImages
    expect(images(folder)).toHaveLength(billed)
    expect(results).toHaveLength(billed)
    expect(billed).toBeLessThan(30)
  })

  it("in-flight requests that outlast --drain-timeout are abandoned, and the summary says how many", async () => {
    // Answers take two minutes: a run that waited for them instead of abandoning them would not end within
    // the test's time (and would have made them), so no stopwatch is needed.
    const slower = await startSimulator(["--seed", "1", "--latency", "120s"])
    try {
      const folder = scratch()
      const input = bulk(folder, 10)
      const running = spawnPeel(
        ["run", pipeline, "--input", input, "--out", folder, "--concurrency", "2", "--drain-timeout", "200ms"],
        simulatorEnv(slower.url),
      )
      while ((await totals(slower.url)).calls < 2 && running.child.exitCode === null)
        await new Promise((resolve) => setTimeout(resolve, 50))
      running.child.kill("SIGINT")
      const { code, stdout, stderr } = await running.finished
      expect(code).toBe(130)
      expect(stderr).toContain("abandoned")
      expect(lines(stdout).at(-1)).toMatch(
        /^interrupted \(SIGINT\): 0 made, 0 skipped, 0 failed, 8 not started, 2 abandoned; spent \$0\.0000$/,
      )
    } finally {
      slower.process.kill("SIGINT")
    }
  })

  it("a second signal aborts at once (exit 130)", async () => {
    // Answers take two minutes: the first signal's drain cannot end on its own before the second signal.
    const slower = await startSimulator(["--seed", "1", "--latency", "120s"])
    try {
      const folder = scratch()
      const input = bulk(folder, 30)
      const running = spawnPeel(
        ["run", pipeline, "--input", input, "--out", folder, "--concurrency", "3"],
        simulatorEnv(slower.url),
      )
      while ((await totals(slower.url)).calls < 3 && running.child.exitCode === null)
        await new Promise((resolve) => setTimeout(resolve, 50))
      running.child.kill("SIGINT")
      // The second signal once the first one has been heard (the run says it is draining).
      await vi.waitFor(() => expect(running.output().stderr).toContain("again aborts"), {
        timeout: 60_000,
        interval: 20,
      })
      running.child.kill("SIGINT")
      const { code, stdout, stderr } = await running.finished
      expect(code).toBe(130)
      expect(lines(stdout).at(-1)).toMatch(/^aborted \(SIGINT\): /)
      expect(stderr).not.toContain("abandoned")
    } finally {
      slower.process.kill("SIGINT")
    }
  })
})

describe("peel run: an image paid for is never dropped", () => {
  it("keeps images in the rescue folder when the output folder disappears mid-run, and says where", async () => {
    const folder = join(scratch(), "out")
    const input = writeInput(
      scratch(),
      Array.from({ length: 8 }, (_, index) => ({ id: `rescue-${index}`, prompt: `rescued picture ${index}` })),
    )
    const before = await totals(slow.url)
    const running = spawnPeel(
      ["run", pipeline, "--input", input, "--out", folder, "--concurrency", "2", "--json"],
      simulatorEnv(slow.url),
    )
    expect(await running.waitForStdout(/"ok":true/)).toBe(true)
    rmSync(folder, { recursive: true })
    const { code, stdout } = await running.finished
    expect(code).toBe(1)
    const results = lines(stdout).map((line) => JSON.parse(line))
    const rescued = results.filter((result) => result.ok === false)
    expect(rescued.length).toBeGreaterThan(0)
    try {
      for (const result of rescued) {
        expect(result.error._tag).toBe("OutputError")
        expect(result.costUsd).toBeGreaterThan(0)
        expect(existsSync(result.error.rescuedTo)).toBe(true)
        expect(result.error.message).toContain(result.error.rescuedTo)
      }
      // Every billed image was either written before the folder went, or rescued.
      expect(results).toHaveLength((await totals(slow.url)).billedImages - before.billedImages)
    } finally {
      for (const result of rescued) rmSync(result.error.rescuedTo, { force: true })
      for (const result of rescued) rmSync(`${result.error.rescuedTo}.json`, { force: true })
    }
  })
})
