/**
 * The operations model without a server: the Prometheus text the gateway's events turn into, and the
 * status tracker's numbers (spend today per key and channel, UTC day roll-over, percentiles, health from
 * the breaker and the failure rate, recent errors, alerts). The served routes and the page are tested
 * end to end in status-page.test.ts.
 */
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import type { GatewayEvent } from "../src/Events.ts"
import * as GatewayMetrics from "../src/ops/Metrics.ts"
import * as Status from "../src/ops/Status.ts"

const event = (overrides: Partial<GatewayEvent> = {}): GatewayEvent => ({
  requestId: "r1",
  route: "gemini.generateContent",
  keyName: "team-a",
  model: "gemini-3-pro-image",
  channel: "google",
  status: 200,
  latencyMs: 100,
  costUsd: 0.134,
  cache: "miss",
  attempts: 1,
  images: 1,
  startedAt: Date.parse("2026-12-03T09:00:00.000Z"),
  ...overrides,
})

/** Every sample line of a Prometheus text exposition, as name, labels and value. */
const samples = (text: string) =>
  text
    .trimEnd()
    .split("\n")
    .filter((line) => !line.startsWith("#"))
    .map((line) => {
      const found = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|\+Inf|NaN)$/.exec(line)
      if (found === null) throw new Error(`not a Prometheus sample line: ${line}`)
      const labels = Object.fromEntries(
        [...(found[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
      )
      return { name: found[1]!, labels, value: Number(found[3]) }
    })

describe("gateway metrics", () => {
  it("counts requests by route, status, key, channel and model, with latency buckets, dollars and cache answers", () => {
    const metrics = GatewayMetrics.make()
    metrics.record(event({ latencyMs: 12 }))
    metrics.record(event({ requestId: "r2", latencyMs: 300, cache: "hit", costUsd: 0 }))
    metrics.record(event({ requestId: "r3", keyName: "team-b", costUsd: 0.039, model: "gemini-3.1-flash-image" }))
    metrics.record(
      event({ requestId: "r4", status: 429, error: "KeyRateLimited", channel: undefined, costUsd: 0, attempts: 0 }),
    )
    metrics.circuit("google", "open")
    metrics.circuit("vertex", "closed")
    const text = metrics.render()
    const lines = samples(text)
    const find = (name: string, labels: Record<string, string>) =>
      lines.filter(
        (line) => line.name === name && Object.entries(labels).every(([key, value]) => line.labels[key] === value),
      )

    expect(text).toContain("# TYPE peel_gateway_requests_total counter")
    expect(text).toContain("# TYPE peel_gateway_request_latency_ms histogram")
    expect(find("peel_gateway_requests_total", { key: "team-a", status: "200", channel: "google" })[0]?.value).toBe(2)
    expect(find("peel_gateway_requests_total", { key: "team-a", status: "429", channel: "none" })[0]?.value).toBe(1)
    expect(
      find("peel_gateway_requests_total", {
        key: "team-b",
        model: "gemini-3.1-flash-image",
        route: "gemini.generateContent",
      })[0]?.value,
    ).toBe(1)
    expect(find("peel_gateway_cost_usd_total", { key: "team-a" })[0]?.value).toBeCloseTo(0.134)
    expect(find("peel_gateway_cost_usd_total", { key: "team-b" })[0]?.value).toBeCloseTo(0.039)
    expect(find("peel_gateway_cache_total", { result: "hit" })[0]?.value).toBe(1)
    expect(find("peel_gateway_cache_total", { result: "miss" })[0]?.value).toBe(2)
    expect(find("peel_gateway_errors_total", { error: "KeyRateLimited" })[0]?.value).toBe(1)
    expect(find("peel_gateway_circuit_state", { channel: "google" })[0]?.value).toBe(2)
    expect(find("peel_gateway_circuit_state", { channel: "vertex" })[0]?.value).toBe(0)
    // Cumulative buckets: 12 ms is under 20, 300 ms under 320; both under +Inf.
    const pro = { key: "team-a", model: "gemini-3-pro-image", channel: "google" }
    const buckets = find("peel_gateway_request_latency_ms_bucket", { channel: "google", model: pro.model })
    expect(buckets.find((line) => line.labels.le === "10")?.value).toBe(0)
    expect(buckets.find((line) => line.labels.le === "20")?.value).toBe(1)
    expect(buckets.find((line) => line.labels.le === "320")?.value).toBe(2)
    expect(buckets.find((line) => line.labels.le === "+Inf")?.value).toBe(2)
    expect(find("peel_gateway_request_latency_ms_sum", { channel: "google", model: pro.model })[0]?.value).toBe(312)
  })

  it("escapes label values it cannot trust (a key's name)", () => {
    const metrics = GatewayMetrics.make()
    metrics.record(event({ keyName: 'a "quoted"\nname' }))
    const line = metrics
      .render()
      .split("\n")
      .find((text) => text.startsWith("peel_gateway_requests_total"))!
    expect(line).toContain('key="a \\"quoted\\"\\nname"')
  })
})

/** Record an event that ended at `at`. */
const recordAt = (tracker: Status.Tracker, ended: GatewayEvent, at: number) =>
  tracker.record({ ...ended, startedAt: at - ended.latencyMs })

const t0 = Date.parse("2026-12-03T10:00:00.000Z")
const closed = new Map<string, Status.ChannelView>([
  ["google", { breaker: "closed" }],
  ["vertex", { breaker: "closed" }],
])

describe("status tracker", () => {
  it("adds up spend today per key and per channel, requests, cache answers and percentiles", () => {
    const tracker = Status.make({ pipeline: "realtime", channels: ["google", "vertex"], startedAt: t0 })
    for (let index = 0; index < 100; index++)
      recordAt(tracker, event({ requestId: `a${index}`, latencyMs: index + 1, costUsd: 0.1 }), t0 + index)
    recordAt(
      tracker,
      event({ keyName: "team-b", channel: "vertex", costUsd: 0.05, cache: "hit", latencyMs: 7 }),
      t0 + 200,
    )
    recordAt(tracker, event({ keyName: undefined, costUsd: 0.2, channel: "vertex" }), t0 + 300)
    const status = Schema.decodeUnknownSync(Status.Status)(
      JSON.parse(JSON.stringify(tracker.status(t0 + 1_000, closed))),
    )
    expect(status.day).toBe("2026-12-03")
    expect(status.pipeline).toBe("realtime")
    expect(status.keys).toEqual([
      { name: "team-a", requests: 100, errors: 0, spendTodayUsd: 10 },
      { name: "anonymous", requests: 1, errors: 0, spendTodayUsd: 0.2 },
      { name: "team-b", requests: 1, errors: 0, spendTodayUsd: 0.05 },
    ])
    const google = status.channels.find((channel) => channel.name === "google")!
    expect(google).toMatchObject({ requests: 100, spendTodayUsd: 10, health: "ok", breaker: "closed" })
    expect(google.latency).toEqual({ samples: 100, p50Ms: 50, p99Ms: 99 })
    expect(status.channels.find((channel) => channel.name === "vertex")).toMatchObject({
      requests: 2,
      spendTodayUsd: 0.25,
    })
    expect(status.totals).toMatchObject({
      requests: 102,
      errors: 0,
      spendTodayUsd: 10.25,
      cacheHits: 1,
      cacheMisses: 101,
    })
  })

  it("starts a new day at UTC midnight: spend today back to zero, counts kept", () => {
    const late = Date.parse("2026-12-03T23:59:00.000Z")
    const tracker = Status.make({ pipeline: "p", channels: ["google"], startedAt: late })
    recordAt(tracker, event({ costUsd: 1 }), late)
    expect(tracker.status(late + 1_000, closed).totals.spendTodayUsd).toBe(1)
    const next = tracker.status(late + 120_000, closed)
    expect(next.day).toBe("2026-12-04")
    expect(next.totals).toMatchObject({ spendTodayUsd: 0, requests: 1 })
    expect(next.keys[0]).toMatchObject({ name: "team-a", spendTodayUsd: 0, requests: 1 })
    recordAt(tracker, event({ costUsd: 0.5 }), late + 180_000)
    expect(tracker.status(late + 181_000, closed).channels[0]).toMatchObject({ spendTodayUsd: 0.5, requests: 2 })
  })

  it("tells health from the breaker, the channel's 5xx rate and whether it was used", () => {
    const tracker = Status.make({ pipeline: "p", channels: ["google", "vertex", "openrouter", "proxy"], startedAt: t0 })
    for (let index = 0; index < 10; index++) recordAt(tracker, event({ channel: "proxy" }), t0)
    recordAt(tracker, event({ channel: "proxy", status: 503, error: "Unavailable" }), t0)
    recordAt(tracker, event({ channel: "openrouter" }), t0)
    const status = tracker.status(
      t0,
      new Map<string, Status.ChannelView>([
        ["google", { breaker: "open", reopensInMs: 4_000 }],
        ["vertex", { breaker: "half-open" }],
        ["openrouter", { breaker: "closed" }],
        ["proxy", { breaker: "closed" }],
      ]),
    )
    const health = Object.fromEntries(status.channels.map((channel) => [channel.name, channel.health]))
    expect(health).toEqual({ google: "down", vertex: "degraded", openrouter: "ok", proxy: "degraded" })
    expect(status.channels[0]).toMatchObject({ breaker: "open", reopensInMs: 4_000 })
    const idle = Status.make({ pipeline: "p", channels: ["google"], startedAt: t0 })
    expect(idle.status(t0, closed).channels[0]?.health).toBe("idle")
    // Upstream statistics alone (calls made before this process's first event) count as use.
    const used = idle.status(
      t0,
      new Map([["google", { breaker: "closed", upstream: { samples: 3, averageMs: 10, recent: [9, 10, 11] } }]]),
    )
    expect(used.channels[0]).toMatchObject({
      health: "ok",
      upstream: { calls: 3, averageMs: 10, p50Ms: 10, p99Ms: 11 },
    })
  })

  it("keeps the latest errors newest first, a client's 4xx not held against the channel", () => {
    const tracker = Status.make({ pipeline: "p", channels: ["google"], startedAt: t0 })
    for (let index = 0; index < 60; index++)
      recordAt(tracker, event({ requestId: `e${index}`, status: 400, error: "BadRequest", costUsd: 0 }), t0 + index)
    recordAt(tracker, event({ requestId: "last", status: 503, error: "Unavailable", costUsd: 0 }), t0 + 100)
    const status = tracker.status(t0 + 200, closed)
    expect(status.recentErrors).toHaveLength(Status.errorsKept)
    expect(status.recentErrors[0]).toMatchObject({
      requestId: "last",
      status: 503,
      error: "Unavailable",
      channel: "google",
    })
    expect(status.recentErrors[1]?.requestId).toBe("e59")
    expect(status.channels[0]).toMatchObject({ requests: 61, errors: 1 })
    expect(status.keys[0]).toMatchObject({ requests: 61, errors: 61 })
  })

  it("fires the failure-rate alerts once enough requests fail, and lists them", () => {
    const tracker = Status.make({ pipeline: "p", channels: ["google"], startedAt: t0 })
    for (let index = 0; index < 30; index++)
      recordAt(
        tracker,
        event({
          requestId: `f${index}`,
          status: index % 3 === 0 ? 503 : 200,
          error: index % 3 === 0 ? "Unavailable" : undefined,
        }),
        t0 + index,
      )
    const status = tracker.status(t0 + 100, closed)
    expect(status.firing.map((alert) => alert.alert).sort()).toEqual(["request-failure-rate", "upstream-error-rate"])
    expect(status.alerts.some((alert) => alert.state === "firing" && alert.scope === "google")).toBe(true)
  })
})
