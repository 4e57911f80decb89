import { describe, expect, it } from "vitest"
import * as Alerts from "../src/Alerts.ts"

describe("Alerts", () => {
  it("fires when the upstream error rate of a channel passes 5% over the window, once, and clears once", () => {
    const events: Array<Alerts.AlertEvent> = []
    const alerts = Alerts.make({ windowMs: 60_000, minSamples: 20 }, (event) => events.push(event))
    let now = 0
    const tick = (ms: number) => {
      now += ms
      return now
    }
    // 40 good calls, then 1 error in 20 (5%: not above), then 3 more errors (over 5%).
    for (let i = 0; i < 40; i++) alerts.attempt("google", false, 100, tick(100))
    alerts.attempt("google", true, 100, tick(100))
    expect(events).toEqual([])
    for (let i = 0; i < 3; i++) alerts.attempt("google", true, 100, tick(100))
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ alert: "upstream-error-rate", scope: "google", state: "firing", threshold: 0.05 })
    expect(events[0]!.message).toMatch(/upstream error rate on google 7\.0% > 5\.0% \(43 in the last 1m\)/)
    // Other channels are judged on their own.
    for (let i = 0; i < 30; i++) alerts.attempt("vertex", false, 100, tick(10))
    expect(events).toHaveLength(1)
    // The errors slide out of the window: cleared.
    now += 61_000
    for (let i = 0; i < 25; i++) alerts.attempt("google", false, 100, tick(100))
    expect(events.map((event) => event.state)).toEqual(["firing", "cleared"])
    expect(alerts.firing()).toEqual([])
  })

  it("watches the request failure rate and p99 latency (30 s by default)", () => {
    const events: Array<Alerts.AlertEvent> = []
    const alerts = Alerts.make({}, (event) => events.push(event))
    for (let i = 0; i < 30; i++) alerts.request(i % 10 === 0, i % 5 === 0 ? 45_000 : 2_000, 1000 + i)
    const kinds = events.map((event) => `${event.alert}:${event.state}`)
    expect(kinds).toContain("request-failure-rate:firing")
    expect(kinds).toContain("latency-p99:firing")
  })

  it("does not count refusals, cache hits, hedge losers or safety blocks as upstream errors", () => {
    expect(Alerts.classify("Unsupported", undefined)).toBeUndefined()
    expect(Alerts.classify("Interrupted", undefined)).toBeUndefined()
    expect(Alerts.classify("ok", true)).toBeUndefined()
    expect(Alerts.classify("ContentBlocked", undefined)).toBe(false)
    expect(Alerts.classify("ok", undefined)).toBe(false)
    expect(Alerts.classify("RateLimited", undefined)).toBe(true)
    expect(Alerts.classify("Timeout", undefined)).toBe(true)
  })
})
