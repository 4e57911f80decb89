/**
 * `peel run --call-log`, `peel stats` and `peel report` end to end: a bulk run against the simulator with
 * injected faults writes a call log whose totals equal the simulator's ledger and which records an alert;
 * `peel report` turns it into one self-contained HTML page that loads in a real headless Chromium (Debian's
 * `chromium`, driven by playwright-core) without console errors or network requests, with data points in
 * every chart; a screenshot is saved (`docs/report.png` when PEEL_UPDATE_SCREENSHOT=1).
 *
 * Without Chromium the browser test is skipped locally and FAILS on CI (`CI` set): `.ci/run` installs it.
 */
import type { ChildProcess } from "node:child_process"
import { copyFileSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CallLog } from "@peel/observability"
import { Result } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { peel, root, secrets, simulatorEnv, startSimulator } from "./cli.ts"

const chromiumPath = process.env.PEEL_CHROMIUM ?? "/usr/bin/chromium"
const hasChromium = existsSync(chromiumPath)
const onCi = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false"

let simulator: { url: string; process: ChildProcess }
const scratch = mkdtempSync(join(tmpdir(), "peel-report-"))
const callLog = join(scratch, "calls.jsonl")
let run: { code: number | null; stdout: string; stderr: string }

beforeAll(async () => {
  // 503s and 429s at 15% in all: well past the 5% alert threshold; a long tail scaled down 200x.
  simulator = await startSimulator([
    "--seed",
    "12",
    "--faults",
    "503=0.1,429=0.05",
    "--latency",
    "lognormal:median=8s,p99=30s",
    "--time-scale",
    "0.005",
  ])
  // The last 10 repeat the first 10 (other ids): answered from realtime.yaml's memory cache.
  const requests = Array.from({ length: 80 }, (_, index) => {
    const variant = index >= 70 ? index - 70 : index
    return JSON.stringify({
      id: `img-${index}`,
      prompt: `a lighthouse, variation ${variant}`,
      use: variant % 5 === 0 ? "hero" : variant % 3 === 0 ? "thumbnail" : "blog",
      ...(variant % 7 === 0 ? { priority: "low" } : {}),
    })
  })
  const input = join(scratch, "requests.jsonl")
  writeFileSync(input, `${requests.join("\n")}\n`)
  run = await peel(
    [
      "run",
      "pipelines/realtime.yaml",
      "--input",
      input,
      "--out",
      join(scratch, "out"),
      "--concurrency",
      "8",
      "--call-log",
      callLog,
    ],
    // No hedges here: a hedge's loser the upstream already answered is billed by the simulator but recorded
    // by the engine as Interrupted at $0 (reported to the engine's owner), which would break the equality.
    { ...simulatorEnv(simulator.url), PEEL_HEDGE_BUDGET: "0" },
  )
}, 120_000)

afterAll(() => {
  simulator.process.kill("SIGINT")
})

const ledger = async (): Promise<{ totals: { calls: number; billedImages: number; billedUsd: number } }> =>
  (await fetch(`${simulator.url}/_simulator/ledger`)).json() as never

describe("peel run --call-log", () => {
  it("writes a call log every line of which decodes, with no key, prompt or image bytes in it", () => {
    expect(run.code, run.stderr).toBe(0)
    const text = readFileSync(callLog, "utf8")
    expect(text.endsWith("\n")).toBe(true)
    const lines = text.trimEnd().split("\n")
    for (const line of lines) expect(Result.isSuccess(CallLog.decode(line)), line).toBe(true)
    const types = new Set(lines.map((line) => JSON.parse(line).type))
    expect([...types].sort()).toEqual(["alert", "attempt", "request", "run"])
    expect(lines.filter((line) => JSON.parse(line).type === "request")).toHaveLength(80)
    for (const secret of secrets) expect(text).not.toContain(secret)
    expect(text).not.toContain("a lighthouse")
    expect(text).not.toContain("iVBOR") // base64 PNG
  })

  it("adds up to the simulator's ledger: calls, billed images and dollars", async () => {
    const { totals } = await ledger()
    const stats = await peel(["stats", callLog, "--json"])
    expect(stats.code, stats.stderr).toBe(0)
    const summary = JSON.parse(stats.stdout)
    expect({ calls: summary.calls, billedImages: summary.billedImages, billedUsd: summary.spentUsd }).toEqual(totals)
    expect(summary.requests.total).toBe(80)
    expect(summary.requests.cached).toBeGreaterThan(0)
  })

  it("fires an alert when the upstream error rate passes 5%, on stderr and in the log", () => {
    expect(run.stderr).toMatch(/peel: alert FIRING: upstream error rate on \w+ \d+\.\d% > 5\.0%/)
    const alerts = readFileSync(callLog, "utf8")
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line))
      .filter((line) => line.type === "alert")
    expect(alerts.some((alert) => alert.alert === "upstream-error-rate" && alert.state === "firing")).toBe(true)
  })

  it("peel stats prints the summary in the terminal", async () => {
    const { code, stdout } = await peel(["stats", callLog])
    expect(code).toBe(0)
    expect(stdout).toMatch(/upstream calls\s+\d+/)
    expect(stdout).toMatch(/billed images\s+\d+/)
    expect(stdout).toMatch(/cost per image\s+\$0\.\d{4}/)
    expect(stdout).toContain("alerts (")
  })

  it("refuses before spending when the call log cannot be opened", async () => {
    const { code, stderr } = await peel(
      ["run", "pipelines/realtime.yaml", "--prompt", "x", "--out", join(scratch, "o2"), "--call-log", scratch],
      simulatorEnv(simulator.url),
    )
    expect(code).toBe(2)
    expect(stderr).toContain("cannot open the call log")
  })
})

describe("peel report", () => {
  it("exits 2 on a missing file or a file with no call-log line", async () => {
    expect((await peel(["report", join(scratch, "nope.jsonl"), "--out", join(scratch, "r.html")])).code).toBe(2)
    const junk = join(scratch, "junk.jsonl")
    writeFileSync(junk, "hello\n")
    const { code, stderr } = await peel(["stats", junk])
    expect(code).toBe(2)
    expect(stderr).toContain("no call-log lines")
  })

  it.skipIf(!hasChromium && !onCi)(
    "renders in headless Chromium: no console errors, no network, data points in every chart, a screenshot",
    async () => {
      expect(hasChromium, `${chromiumPath} is missing: install Debian's chromium (.ci/run does)`).toBe(true)
      const page = join(scratch, "report.html")
      const made = await peel(["report", callLog, "--out", page])
      expect(made.code, made.stderr).toBe(0)
      expect(made.stdout).toContain(`report written to ${page}`)
      const html = readFileSync(page, "utf8")
      expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/)

      const { chromium } = await import("playwright-core")
      const browser = await chromium.launch({
        executablePath: chromiumPath,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      })
      try {
        const tab = await browser.newPage({ viewport: { width: 1280, height: 900 } })
        const problems: Array<string> = []
        const fetched: Array<string> = []
        tab.on("console", (message) => {
          if (message.type() === "error" || message.type() === "warning") problems.push(message.text())
        })
        tab.on("pageerror", (error) => problems.push(error.message))
        tab.on("request", (request) => {
          if (!request.url().startsWith("file:")) fetched.push(request.url())
        })
        await tab.goto(`file://${page}`, { waitUntil: "load" })
        expect(problems).toEqual([])
        expect(fetched).toEqual([])
        const charts = await tab.$$eval("svg[data-chart]", (svgs) =>
          svgs.map((svg) => ({ name: svg.getAttribute("data-chart"), points: svg.querySelectorAll(".pt").length })),
        )
        expect(charts.map((chart) => chart.name).sort()).toEqual(
          ["cache", "cost", "errors", "latency", "spend-channel", "spend-model"].sort(),
        )
        for (const chart of charts) expect(chart.points, chart.name ?? "").toBeGreaterThan(0)
        const shot = join(scratch, "report.png")
        await tab.screenshot({ path: shot, fullPage: true })
        expect(statSync(shot).size).toBeGreaterThan(10_000)
        if (process.env.PEEL_UPDATE_SCREENSHOT === "1") copyFileSync(shot, join(root, "docs", "report.png"))
      } finally {
        await browser.close()
      }
    },
    60_000,
  )
})
