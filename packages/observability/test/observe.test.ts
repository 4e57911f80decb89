import { mkdtempSync, readFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as CallLog from "../src/CallLog.ts"
import * as Observe from "../src/Observe.ts"
import * as Report from "../src/Report.ts"
import * as Stats from "../src/Stats.ts"
import * as Summary from "../src/Summary.ts"
import { attempt, done, failed, plan } from "./fixtures.ts"
import { startReceiver } from "./otlp.ts"

const t0 = Date.parse("2026-11-26T10:00:00.000Z")

/** One request that failed over from google (503, then 429) to vertex, one that failed outright. */
const feed = (observed: Observe.Observed) => {
  const p1 = plan("hero-1")
  const a1 = attempt({ outcome: "Unavailable", status: 503, costUsd: 0, latencyMs: 800, message: "503 from google" })
  const a2 = attempt({ outcome: "RateLimited", status: 429, costUsd: 0, latencyMs: 300, startedAt: t0 + 800, try: 2 })
  const a3 = attempt({
    channel: "vertex",
    startedAt: t0 + 1100,
    latencyMs: 2000,
    usage: { inputTokens: 9, outputImageTokens: 1120 },
  })
  for (const observer of observed.observers)
    for (const record of [a1, a2, a3]) observer.attempt?.({ id: "hero-1", plan: p1 }, record)
  for (const observer of observed.observers) observer.done?.(p1, done("hero-1", [a1, a2, a3], 3200))
  const p2 = plan("blog-2")
  const b1 = attempt({ outcome: "Unauthorized", status: 401, costUsd: 0, latencyMs: 50, startedAt: t0 + 3000 })
  for (const observer of observed.observers) {
    observer.attempt?.({ id: "blog-2", plan: p2 }, b1)
    observer.done?.(p2, failed("blog-2", [b1], "Unauthorized"))
  }
}

describe("Observe", () => {
  it("writes a call log: run start, an attempt line per attempt, a request line per request, run end", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "peel-observe-")), "calls.jsonl")
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const observed = yield* Observe.make({
            callLog: path,
            env: {},
            runId: "run-1",
            pipeline: "p.yaml",
            requests: 2,
          })
          expect(observed.telemetry).toBeUndefined()
          feed(observed)
          observed.end("failed")
        }),
      ),
    )
    const text = readFileSync(path, "utf8")
    const parsed = CallLog.parse(text)
    expect(parsed.problems).toEqual([])
    expect(parsed.lines.map((line) => line.type)).toEqual([
      "run",
      "attempt",
      "attempt",
      "attempt",
      "request",
      "attempt",
      "request",
      "run",
    ])
    expect(parsed.lines.at(-1)).toMatchObject({ type: "run", event: "end", status: "failed", runId: "run-1" })
    expect(parsed.lines[1]).toMatchObject({
      type: "attempt",
      requestId: "hero-1",
      promptHash: "hash-hero-1",
      channel: "google",
      outcome: "Unavailable",
      status: 503,
      message: "503 from google",
      startedAt: "2026-11-26T10:00:00.000Z",
    })
    expect(parsed.lines[4]).toMatchObject({
      type: "request",
      outcome: "ok",
      channel: "vertex",
      attempts: 3,
      calls: 3,
      costUsd: 0.134,
    })
    expect(parsed.lines[6]).toMatchObject({ type: "request", outcome: "Unauthorized", costUsd: 0 })
    // Never the prompt, never image bytes.
    expect(text).not.toContain("secret prompt")
    expect(text).not.toContain("bytes")

    const summary = Summary.summarize(parsed.lines)
    expect(summary).toMatchObject({ calls: 4, billedImages: 1, spentUsd: 0.134, costPerImageUsd: 0.134 })
    expect(summary.requests).toMatchObject({ total: 2, ok: 1, failed: 1 })
    expect(summary.errorsByTag).toEqual({ Unavailable: 1, RateLimited: 1, Unauthorized: 1 })
    expect(Stats.text(summary)).toMatch(/billed images\s+1/)
    const page = Report.html(summary)
    for (const chart of ["latency", "errors", "cost", "cache", "spend-channel", "spend-model"])
      expect(page).toContain(`data-chart="${chart}"`)
    expect(page).not.toMatch(/<script/)
  })

  it("updates Effect metrics: latency histograms per channel and model, counters by error tag and dollars", async () => {
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const observed = yield* Observe.make({ env: {}, onAlert: false })
          feed(observed)
          const snapshot = observed.metrics.snapshot()
          const find = (id: string, attributes: Record<string, string>) =>
            (
              snapshot.find(
                (metric) =>
                  metric.id === id &&
                  Object.entries(attributes).every(([key, value]) => metric.attributes?.[key] === value),
              )?.state as { count: number } | undefined
            )?.count
          expect(find("peel_errors_total", { error: "Unavailable", channel: "google" })).toBe(1)
          expect(find("peel_cost_usd_total", { channel: "vertex" })).toBeCloseTo(0.134)
          expect(find("peel_attempt_latency_ms", { channel: "vertex", model: "gemini-3-pro-image" })).toBe(1)
          expect(find("peel_requests_total", { outcome: "Unauthorized" })).toBe(1)
        }),
      ),
    )
  })
})

describe("OpenTelemetry", () => {
  it("exports a span per request and a child span per attempt over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set", async () => {
    const receiver = await startReceiver()
    try {
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const observed = yield* Observe.make({
              env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: "peel-test" },
              onAlert: false,
              runId: "run-otel",
            })
            expect(observed.telemetry?.tracesUrl).toBe(`${receiver.url}/v1/traces`)
            feed(observed)
          }),
        ),
      )
      const requests = receiver.spans.filter((span) => span.name === "peel.request")
      const attempts = receiver.spans.filter((span) => span.name === "peel.attempt")
      expect(requests).toHaveLength(2)
      expect(attempts).toHaveLength(4)
      const hero = requests.find((span) => span.attributes["peel.request.id"] === "hero-1")!
      expect(hero.service).toBe("peel-test")
      expect(hero.attributes).toMatchObject({ "peel.outcome": "ok", "peel.channel": "vertex", "peel.cost_usd": 0.134 })
      const children = attempts.filter((span) => span.parentSpanId === hero.spanId)
      expect(children.map((span) => [span.attributes["peel.channel"], span.attributes["peel.outcome"]])).toEqual([
        ["google", "Unavailable"],
        ["google", "RateLimited"],
        ["vertex", "ok"],
      ])
      for (const child of children) expect(child.traceId).toBe(hero.traceId)
      expect(children[0]!.attributes["http.response.status_code"]).toBe(503)
      expect(children[0]!.start).toBe(BigInt(t0) * 1_000_000n)
      expect(children[0]!.end - children[0]!.start).toBe(800_000_000n)
      expect(children[0]!.status?.code).toBe(2)
      expect(children[2]!.attributes["peel.cost_usd"]).toBe(0.134)
      expect(receiver.metricNames.has("peel_attempt_latency_ms")).toBe(true)
    } finally {
      await receiver.close()
    }
  })

  it("exports nothing without the variable; an unreachable or hanging collector neither fails nor holds up the run", async () => {
    expect((await Effect.runPromise(Effect.scoped(Observe.make({ env: {} })))).telemetry).toBeUndefined()
    // A port that was free a moment ago: connection refused.
    const refused = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number }
        server.close(() => resolve(port))
      })
    })
    // A collector that accepts the connection and never answers: without the shutdown timeout the end of
    // the run would wait for it forever, so finishing at all (within a bound far above the ~1 s the
    // timeouts allow, however busy the machine) is the check.
    const sockets = new Set<import("node:net").Socket>()
    const hanging = createServer((socket) => {
      sockets.add(socket)
    })
    const hangingPort = await new Promise<number>((resolve) =>
      hanging.listen(0, "127.0.0.1", () => resolve((hanging.address() as { port: number }).port)),
    )
    // Ending a scope cannot be interrupted (its finalizers run to the end), so the bound is a race.
    const runWith = (port: number) =>
      Promise.race([
        Effect.runPromise(
          Effect.scoped(
            Effect.gen(function* () {
              const observed = yield* Observe.make({
                env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` },
                onAlert: false,
              })
              expect(observed.telemetry).toBeDefined()
              feed(observed)
            }),
          ),
        ).then(() => "finished"),
        new Promise<string>((resolve) => setTimeout(() => resolve("still waiting after 30 s"), 30_000).unref()),
      ])
    try {
      expect(await runWith(refused)).toBe("finished")
      expect(await runWith(hangingPort)).toBe("finished")
      expect(sockets.size).toBeGreaterThan(0) // the hanging collector was really asked
    } finally {
      for (const socket of sockets) socket.destroy()
      hanging.close()
    }
  }, 90_000)
})

describe("calls", () => {
  it("an open circuit, a cooling-down channel, a refusal, a cache hit or a placeholder is not a call", async () => {
    const { isCall } = await import("../src/Lines.ts")
    expect(isCall({ outcome: "ok" })).toBe(true)
    expect(isCall({ outcome: "Interrupted" })).toBe(true)
    for (const outcome of ["Unsupported", "CircuitOpen", "CoolingDown"]) expect(isCall({ outcome })).toBe(false)
    expect(isCall({ outcome: "ok", cached: true })).toBe(false)
    expect(isCall({ outcome: "ok", placeholder: true })).toBe(false)
  })
})
