/**
 * `/metrics`, `/status.json` and the status page `/` of a real gateway in front of the simulator, after
 * requests through `@google/genai`: AI Studio fails twice (its breaker opens), OpenRouter answers, one
 * request is malformed. The numbers agree with the answers' `x-peel-cost-usd` and the simulator's ledger;
 * the page loads in a real headless Chromium (Debian's `chromium`, driven by playwright-core) with no
 * console error and no request but its own `status.json`, shows those numbers, and keeps polling (a later
 * request appears without a reload). A screenshot is saved (`docs/gateway-status.png` when
 * PEEL_UPDATE_SCREENSHOT=1).
 *
 * Without Chromium the browser test is skipped locally and FAILS on CI (`CI` set): `.ci/run` installs it.
 */
import { copyFileSync, existsSync, mkdtempSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { GoogleGenAI } from "@google/genai"
import { Simulator } from "@peel/simulator"
import { Effect, Exit, Schema, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Gateway } from "../src/index.ts"
import * as Status from "../src/ops/Status.ts"

const upstreamKey = "test-upstream-gemini-key-SECRET-51d0"

const chromiumPath = process.env.PEEL_CHROMIUM ?? "/usr/bin/chromium"
const hasChromium = existsSync(chromiumPath)
const onCi = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false"
const openRouterKey = "test-upstream-openrouter-key-SECRET-77c1"

const costs: Array<number> = []

const generate = async (prompt: string) => {
  const response = await new GoogleGenAI({
    apiKey: "client-key",
    httpOptions: { baseUrl: url },
  }).models.generateContent({
    model: "gemini-3-pro-image",
    contents: prompt,
    config: { responseModalities: ["IMAGE"], imageConfig: { aspectRatio: "1:1", imageSize: "1K" } },
  })
  const headers = response.sdkHttpResponse?.headers ?? {}
  costs.push(Number(headers["x-peel-cost-usd"]))
  return headers
}

const status = async () => {
  const response = await fetch(`${url}/status.json`)
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toContain("application/json")
  return Schema.decodeUnknownSync(Status.Status)(await response.json())
}

let sim: Simulator.Handle
let scope: Scope.Closeable
let url: string

beforeAll(async () => {
  sim = await Simulator.start({ port: 0 })
  scope = Effect.runSync(Scope.make())
  const gateway = await Effect.runPromise(
    Gateway.start({
      pipeline: join(import.meta.dirname, "fixtures", "status.yaml"),
      port: 0,
      load: {
        env: {
          GEMINI_BASE_URL: sim.url,
          GEMINI_API_KEY: upstreamKey,
          OPENROUTER_BASE_URL: `${sim.url}/api/v1`,
          OPENROUTER_API_KEY: openRouterKey,
        },
        resolveFrom: [import.meta.filename],
      },
      accessLog: false,
    }).pipe(Scope.provide(scope)),
  )
  url = gateway.url
  // AI Studio answers 503 twice: its breaker opens; OpenRouter makes every image.
  sim.script("gemini", ["503", "503"])
  const first = await generate("a lighthouse, one")
  expect(first["x-peel-channel"]).toBe("openrouter")
  await generate("a lighthouse, two")
  await generate("a lighthouse, three")
  const bad = await fetch(`${url}/v1beta/models/gemini-3-pro-image:generateContent`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-goog-api-key": "client-key" },
    body: "{ not json",
  })
  expect(bad.status).toBe(400)
}, 60_000)

afterAll(async () => {
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  await sim?.stop()
})

describe("GET /status.json", () => {
  it("shows spend today per key and channel, each channel's breaker and health, p50/p99 and the last error", async () => {
    const now = await status()
    const ledger = sim.ledger().totals
    const spent = costs.reduce((sum, cost) => sum + cost, 0)
    expect(ledger.billedImages).toBe(3)
    expect(now.totals.spendTodayUsd).toBeCloseTo(ledger.billedUsd, 5)
    expect(now.totals.spendTodayUsd).toBeCloseTo(spent, 5)
    expect(now.totals).toMatchObject({ requests: 4, errors: 1, cacheMisses: 3 })
    expect(now.keys).toEqual([{ name: "anonymous", requests: 4, errors: 1, spendTodayUsd: now.totals.spendTodayUsd }])
    const [google, openrouter] = [
      now.channels.find((c) => c.name === "google")!,
      now.channels.find((c) => c.name === "openrouter")!,
    ]
    expect(google).toMatchObject({ breaker: "open", health: "down", spendTodayUsd: 0 })
    expect(google.reopensInMs).toBeGreaterThan(60_000)
    expect(openrouter).toMatchObject({ breaker: "closed", health: "ok", requests: 3, errors: 0 })
    expect(openrouter.spendTodayUsd).toBeCloseTo(ledger.billedUsd, 5)
    expect(openrouter.latency.samples).toBe(3)
    expect(openrouter.latency.p99Ms).toBeGreaterThanOrEqual(openrouter.latency.p50Ms!)
    // The state's channel statistics: AI Studio's two failed calls, OpenRouter's three images.
    expect(google.upstream?.calls).toBe(2)
    expect(openrouter.upstream?.calls).toBe(3)
    expect(now.recentErrors[0]).toMatchObject({ status: 400, error: "BadRequest", key: "anonymous" })
    expect(now.pipeline).toBe("status-test")
    const text = JSON.stringify(now)
    for (const secret of [upstreamKey, openRouterKey, "client-key", "a lighthouse"]) expect(text).not.toContain(secret)
  })
})

describe("GET /metrics", () => {
  it("renders Prometheus text: requests by status/key/channel/model, latency, cost, cache, circuit state", async () => {
    const response = await fetch(`${url}/metrics`)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
    const text = await response.text()
    const value = (line: string) =>
      Number(
        text
          .split("\n")
          .find((candidate) => candidate.startsWith(line))
          ?.split(" ")
          .at(-1),
      )
    expect(
      value(
        'peel_gateway_requests_total{route="gemini.generateContent",status="200",key="anonymous",channel="openrouter",model="gemini-3-pro-image"}',
      ),
    ).toBe(3)
    expect(value('peel_gateway_requests_total{route="gemini.generateContent",status="400"')).toBe(1)
    expect(value('peel_gateway_cost_usd_total{key="anonymous",channel="openrouter"')).toBeCloseTo(
      sim.ledger().totals.billedUsd,
      6,
    )
    expect(value('peel_gateway_cache_total{result="miss"}')).toBe(3)
    expect(value('peel_gateway_request_latency_ms_count{route="gemini.generateContent",channel="openrouter"')).toBe(3)
    expect(value('peel_gateway_circuit_state{channel="google"}')).toBe(2)
    expect(value('peel_gateway_circuit_state{channel="openrouter"}')).toBe(0)
    expect(value('peel_gateway_errors_total{route="gemini.generateContent",error="BadRequest"}')).toBe(1)
    for (const secret of [upstreamKey, openRouterKey, "client-key"]) expect(text).not.toContain(secret)
  })
})

describe("GET / (the status page)", () => {
  it("is one self-contained page: inline style and script, no external URL, a CSP that allows only itself", async () => {
    const response = await fetch(`${url}/`)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8")
    expect(response.headers.get("content-security-policy")).toContain("default-src 'none'")
    const html = await response.text()
    expect(html).not.toMatch(/https?:\/\/|<link|src=/)
    expect(html).toContain('fetch("status.json"')
  })

  it.skipIf(!hasChromium && !onCi)(
    "renders in headless Chromium with the live numbers, keeps polling, no console error, no other request",
    async () => {
      expect(hasChromium, `${chromiumPath} is missing: install Debian's chromium (.ci/run does)`).toBe(true)
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
        tab.on("request", (request) => fetched.push(request.url()))
        await tab.goto(`${url}/`, { waitUntil: "load" })
        await tab.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 })
        const shown = await status()

        expect(await tab.textContent("#pipeline")).toBe("status-test")
        expect(await tab.textContent("#t-requests")).toBe(String(shown.totals.requests))
        expect(await tab.textContent("#t-spend")).toBe(`$${shown.totals.spendTodayUsd.toFixed(4)}`)
        const channels = await tab.$$eval("#channels tr", (rows) =>
          rows.map((row) => ({
            name: row.getAttribute("data-channel"),
            health: row.getAttribute("data-health"),
            breaker: row.getAttribute("data-breaker"),
          })),
        )
        expect(channels).toEqual([
          { name: "google", health: "down", breaker: "open" },
          { name: "openrouter", health: "ok", breaker: "closed" },
        ])
        const openrouterRow = await tab.textContent('#channels tr[data-channel="openrouter"]')
        expect(openrouterRow).toContain(`$${shown.channels[1]!.spendTodayUsd.toFixed(4)}`)
        expect(await tab.textContent('#keys tr[data-key="anonymous"]')).toContain(
          `$${shown.keys[0]!.spendTodayUsd.toFixed(4)}`,
        )
        expect(await tab.$$eval('#errors tr[data-error="BadRequest"]', (rows) => rows.length)).toBe(1)

        // Polling: a request made now shows up without a reload.
        await generate("a lighthouse, four")
        await tab.waitForFunction(
          (expected) => document.getElementById("t-requests")?.textContent === expected,
          String(shown.totals.requests + 1),
          { timeout: 15_000 },
        )

        expect(problems).toEqual([])
        const paths = new Set(fetched.map((url) => new URL(url).pathname))
        expect([...paths].sort()).toEqual(["/", "/status.json"])
        expect(fetched.every((url) => url.startsWith(url))).toBe(true)

        const shot = join(mkdtempSync(join(tmpdir(), "peel-status-")), "status.png")
        await tab.screenshot({ path: shot, fullPage: true })
        expect(statSync(shot).size).toBeGreaterThan(10_000)
        if (process.env.PEEL_UPDATE_SCREENSHOT === "1")
          copyFileSync(shot, join(import.meta.dirname, "..", "..", "..", "docs", "gateway-status.png"))
      } finally {
        await browser.close()
      }
    },
    60_000,
  )
})
