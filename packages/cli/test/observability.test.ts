/**
 * The call log when a run is cut short (SIGKILL mid-way: every line on disk complete and parseable;
 * SIGTERM: drained, flushed, the run's end line says so), and OpenTelemetry export from a real `peel run`
 * to a small OTLP/HTTP receiver.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CallLog } from "@peel/observability"
import { Result } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startReceiver } from "../../observability/test/otlp.ts"
import { peel, root, simulatorEnv, spawnPeel, startSimulator } from "./cli.ts"

let simulator: { url: string; process: ChildProcess }
beforeAll(async () => {
  simulator = await startSimulator(["--seed", "5", "--latency", "150ms", "--faults", "503=0.1"])
})
afterAll(() => {
  simulator.process.kill("SIGINT")
})

const scratch = () => mkdtempSync(join(tmpdir(), "peel-calllog-cli-"))

const bulkInput = (dir: string, count: number) => {
  const input = join(dir, "requests.jsonl")
  writeFileSync(
    input,
    `${Array.from({ length: count }, (_, index) => JSON.stringify({ id: `k-${index}`, prompt: `a kite ${index}`, use: "blog" })).join("\n")}\n`,
  )
  return input
}

const requestLines = (path: string) =>
  existsSync(path)
    ? readFileSync(path, "utf8")
        .split("\n")
        .filter((line) => line.includes('"type":"request"')).length
    : 0

const waitFor = async (condition: () => boolean, timeoutMs = 60_000) => {
  const until = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > until) throw new Error("timed out")
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const decodeEvery = (path: string) => {
  const text = readFileSync(path, "utf8")
  expect(text.endsWith("\n")).toBe(true)
  return text
    .trimEnd()
    .split("\n")
    .map((line) => {
      const decoded = CallLog.decode(line)
      expect(Result.isSuccess(decoded), line).toBe(true)
      return JSON.parse(line)
    })
}

describe("the call log of a run cut short", () => {
  it("SIGKILL mid-way: every line on disk is complete and parseable", async () => {
    const dir = scratch()
    const log = join(dir, "calls.jsonl")
    const running = spawnPeel(
      [
        "run",
        "pipelines/google-direct.yaml",
        "--input",
        bulkInput(dir, 300),
        "--concurrency",
        "8",
        "--out",
        join(dir, "out"),
        "--call-log",
        log,
      ],
      simulatorEnv(simulator.url),
    )
    await waitFor(() => requestLines(log) >= 20)
    running.child.kill("SIGKILL")
    const finished = await running.finished
    expect(finished.code).toBe(null)
    const lines = decodeEvery(log)
    const requests = lines.filter((line) => line.type === "request")
    expect(requests.length).toBeGreaterThanOrEqual(20)
    expect(requests.length).toBeLessThan(300)
    expect(lines.some((line) => line.type === "run" && line.event === "end")).toBe(false)
  }, 90_000)

  it("SIGTERM: drains, flushes every request that finished, and ends with the run's end line", async () => {
    const dir = scratch()
    const log = join(dir, "calls.jsonl")
    const running = spawnPeel(
      [
        "run",
        "pipelines/google-direct.yaml",
        "--input",
        bulkInput(dir, 300),
        "--concurrency",
        "8",
        "--out",
        join(dir, "out"),
        "--call-log",
        log,
        "--json",
      ],
      simulatorEnv(simulator.url),
    )
    await waitFor(() => requestLines(log) >= 10)
    running.child.kill("SIGTERM")
    const finished = await running.finished
    expect(finished.code).toBe(143)
    const lines = decodeEvery(log)
    // Every request printed on stdout is in the log.
    const printed = finished.stdout.trim().split("\n").length
    expect(lines.filter((line) => line.type === "request")).toHaveLength(printed)
    expect(lines.at(-1)).toMatchObject({ type: "run", event: "end", status: "SIGTERM" })
  }, 90_000)
})

describe("OpenTelemetry from peel run", () => {
  it("sends a span per request and a child span per attempt, with channel, model, outcome and cost", async () => {
    const receiver = await startReceiver()
    try {
      const dir = scratch()
      const { code, stderr } = await peel(
        ["run", "pipelines/realtime.yaml", "--input", bulkInput(dir, 6), "--out", join(dir, "out"), "--json"],
        { ...simulatorEnv(simulator.url), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: "peel-ci" },
      )
      expect(code, stderr).toBe(0)
      const requests = receiver.spans.filter((span) => span.name === "peel.request")
      const attempts = receiver.spans.filter((span) => span.name === "peel.attempt")
      expect(requests).toHaveLength(6)
      expect(attempts.length).toBeGreaterThanOrEqual(6)
      for (const request of requests) {
        expect(request.service).toBe("peel-ci")
        expect(request.attributes["peel.outcome"]).toBe("ok")
        expect(request.attributes["peel.model"]).toBe("gemini-3-pro-image")
        expect(request.attributes["peel.cost_usd"]).toBeGreaterThan(0)
        const children = attempts.filter((span) => span.parentSpanId === request.spanId)
        expect(children.length).toBeGreaterThanOrEqual(1)
        const won = children.find((span) => span.attributes["peel.outcome"] === "ok")!
        expect(won.attributes["peel.channel"]).toBe(request.attributes["peel.channel"])
        expect(won.attributes["peel.model"]).toBe("gemini-3-pro-image")
        expect(won.attributes["peel.cost_usd"]).toBeGreaterThan(0)
        expect(won.traceId).toBe(request.traceId)
        expect(won.start).toBeGreaterThanOrEqual(request.start)
        expect(won.end).toBeLessThanOrEqual(request.end)
      }
      expect(receiver.paths).toContain("/v1/traces")
    } finally {
      await receiver.close()
    }
  }, 60_000)

  it("an unreachable collector does not fail the run", async () => {
    const dir = scratch()
    const { code, stderr } = await peel(
      ["run", "pipelines/google-direct.yaml", "--prompt", "a kite", "--out", join(dir, "out"), "--json"],
      { ...simulatorEnv(simulator.url), OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" },
    )
    expect(code, stderr).toBe(0)
    expect(stderr).toBe("")
  }, 60_000)
})

/** Run `peel ARGS...` with stdout and stderr on a terminal (util-linux `script`); what the terminal showed. */
const onTerminal = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
): Promise<{ code: number | null; screen: string }> =>
  new Promise((resolve, reject) => {
    const quote = (text: string) => `'${text.replace(/'/g, "'\\''")}'`
    const command = [process.execPath, join(root, "packages", "cli", "src", "bin.ts"), ...args].map(quote).join(" ")
    const child = spawn("script", ["-qec", command, "/dev/null"], {
      cwd: root,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", NO_COLOR: "1", COLUMNS: "200", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let screen = ""
    child.stdout.on("data", (chunk: Buffer) => {
      screen += chunk.toString()
    })
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, screen }))
  })

describe("live progress on a terminal", () => {
  it("bulk: a bar with done/failed/total, rate, ETA, dollars spent and requests per channel", async () => {
    const dir = scratch()
    const { code, screen } = await onTerminal(
      ["run", "pipelines/google-direct.yaml", "--input", bulkInput(dir, 12), "--out", join(dir, "out")],
      simulatorEnv(simulator.url),
    )
    expect(code, screen).toBe(0)
    expect(screen).toMatch(
      /\] \d+\/12 {2}ok \d+ {2}failed \d+ {2}\d+\.\d\/s {2}(ETA \d+:\d\d|done) {2}\$\d+\.\d{4} {2}google \d+/,
    )
    expect(screen).toMatch(/\] 12\/12 {2}ok 12/)
  }, 60_000)

  it("one --prompt: a spinner with the elapsed time while the image is made", async () => {
    const slow = await startSimulator(["--latency", "1500ms"])
    try {
      const dir = scratch()
      const { code, screen } = await onTerminal(
        ["run", "pipelines/google-direct.yaml", "--prompt", "a slow kite", "--out", join(dir, "out")],
        simulatorEnv(slow.url),
      )
      expect(code, screen).toBe(0)
      expect(screen).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \d+\.\ds {2}(first attempt|gemini-3-pro-image)/)
    } finally {
      slow.process.kill("SIGINT")
    }
  }, 60_000)

  it("nothing of it with --json", async () => {
    const dir = scratch()
    const { code, screen } = await onTerminal(
      ["run", "pipelines/google-direct.yaml", "--input", bulkInput(dir, 4), "--out", join(dir, "out"), "--json"],
      simulatorEnv(simulator.url),
    )
    expect(code, screen).toBe(0)
    expect(screen).not.toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏█░]/)
    expect(screen).not.toContain("\x1b[K")
  }, 60_000)
})
