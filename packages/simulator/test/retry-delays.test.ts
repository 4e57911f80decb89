/** The retry delays the simulator advertises follow its time scale, and an RPM 429 says when the window frees. */
import { type ApiError, GoogleGenAI } from "@google/genai"
import OpenAI, { type APIError } from "openai"
import { describe, expect, it } from "vitest"
import { Simulator } from "../src/index.ts"
import { retryAfterHeaders, retryDelayText, scaledMillis } from "../src/RetryHint.ts"
import { gemini, openRouter, proxyChat, vertexExpress, vertexProject } from "./helpers.ts"

const thrownBy = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  )

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

/** `RetryInfo.retryDelay` of a Google-shaped error, as the SDK hands it over. */
const retryDelayOf = (error: unknown): string | undefined => {
  const body = JSON.parse((error as ApiError).message) as {
    error: { details?: Array<{ "@type"?: string; retryDelay?: string }> }
  }
  return body.error.details?.find((detail) => String(detail["@type"]).endsWith("google.rpc.RetryInfo"))?.retryDelay
}

/** Google's Duration text to milliseconds ("0.034s" → 34). */
const millisOf = (duration: string | undefined): number => {
  const match = /^(\d+(?:\.\d{1,9})?)s$/.exec(duration ?? "")
  if (match === null) throw new Error(`not a Google Duration: ${duration}`)
  return Math.round(Number(match[1]) * 1000)
}

const withSimulator = async <A>(options: Simulator.Options, use: (sim: Simulator.Handle) => Promise<A>) => {
  const sim = await Simulator.start({ port: 0, ...options })
  try {
    return await use(sim)
  } finally {
    await sim.stop()
  }
}

const proCall = (client: GoogleGenAI) =>
  thrownBy(client.models.generateContent({ model: "gemini-3-pro-image", contents: "a fox" }))

const orCall = (client: OpenAI) =>
  thrownBy(
    client.chat.completions.create({
      model: "google/gemini-3-pro-image",
      messages: [{ role: "user", content: "a fox" }],
      // @ts-expect-error OpenRouter extension
      modalities: ["image", "text"],
    }),
  )

const headersOf = (error: unknown) => {
  const headers = (error as APIError).headers
  return { retryAfter: headers?.get("retry-after"), retryAfterMs: headers?.get("retry-after-ms") ?? undefined }
}

describe("formats", () => {
  it("scales to whole milliseconds, never below 1 ms, without float noise", () => {
    expect(scaledMillis(34_000, 1)).toBe(34_000)
    expect(scaledMillis(34_000, 0.001)).toBe(34)
    expect(scaledMillis(2_000, 0.07)).toBe(140)
    expect(scaledMillis(2_000, 0.0001)).toBe(1)
    expect(scaledMillis(34_000, 0)).toBe(1)
  })

  it("retryDelay is Google's Duration text in seconds; Retry-After is whole seconds, rounded up, plus retry-after-ms", () => {
    expect([34_000, 340, 34, 1_500, 1].map(retryDelayText)).toEqual(["34s", "0.34s", "0.034s", "1.5s", "0.001s"])
    expect(retryAfterHeaders(2_000)).toEqual({ "retry-after": "2" })
    expect(retryAfterHeaders(20)).toEqual({ "retry-after": "1", "retry-after-ms": "20" })
    expect(retryAfterHeaders(1_500)).toEqual({ "retry-after": "2", "retry-after-ms": "1500" })
  })
})

describe("fault retry delays follow the time scale", () => {
  it("at time scale 1 they are the upstreams' own: RetryInfo 34s, Retry-After 2 / 3 / 86400 and no retry-after-ms", () =>
    withSimulator({}, async (sim) => {
      sim.script("gemini", ["429"])
      expect(retryDelayOf(await proCall(gemini(sim.url)))).toBe("34s")
      sim.script("openrouter", ["429", "503", "429-daily"])
      const client = openRouter(sim.url)
      expect(headersOf(await orCall(client))).toEqual({ retryAfter: "2", retryAfterMs: undefined })
      expect(headersOf(await orCall(client))).toEqual({ retryAfter: "3", retryAfterMs: undefined })
      expect(headersOf(await orCall(client))).toEqual({ retryAfter: "86400", retryAfterMs: undefined })
    }))

  it("at time scale 0.01: RetryInfo 0.34s on every Google route; Retry-After 1 with retry-after-ms on OpenAI routes", () =>
    withSimulator({ timeScale: 0.01 }, async (sim) => {
      sim.script("gemini", ["429"])
      sim.script("proxy-gemini", ["429"])
      sim.script("vertex", ["429"])
      sim.script("vertex-express", ["429"])
      const clients = [gemini(sim.url), vertexProject(sim.url), vertexExpress(sim.url)]
      for (const client of clients) expect(retryDelayOf(await proCall(client))).toBe("0.34s")
      // the Bearer-only flavour of the Gemini route: a raw call, as a proxy client makes it
      const proxied = await fetch(`${sim.url}/v1beta/models/gemini-3-pro-image:generateContent`, {
        method: "POST",
        headers: { authorization: "Bearer sk-proxy", "content-type": "application/json" },
        body: JSON.stringify({ contents: [{ parts: [{ text: "x" }] }] }),
      })
      expect(proxied.status).toBe(429)
      expect(retryDelayOf({ message: await proxied.text() })).toBe("0.34s")
      expect(sim.ledger().calls.map((call) => call.route)).toEqual([
        "gemini",
        "vertex",
        "vertex-express",
        "proxy-gemini",
      ])

      sim.script("openrouter", ["429", "503", "429-daily"])
      const client = openRouter(sim.url)
      expect(headersOf(await orCall(client))).toEqual({ retryAfter: "1", retryAfterMs: "20" })
      expect(headersOf(await orCall(client))).toEqual({ retryAfter: "1", retryAfterMs: "30" })
      expect(headersOf(await orCall(client))).toEqual({ retryAfter: "864", retryAfterMs: undefined })
      sim.script("proxy-chat", ["429"])
      const proxyError = await thrownBy(
        proxyChat(sim.url).chat.completions.create({
          model: "gemini-3-pro-image",
          messages: [{ role: "user", content: "x" }],
        }),
      )
      expect(headersOf(proxyError)).toEqual({ retryAfter: "1", retryAfterMs: "20" })
    }))

  it("at time scale 0 the hint stays present: 0.001s, Retry-After 1, retry-after-ms 1", () =>
    withSimulator({ timeScale: 0 }, async (sim) => {
      sim.script("gemini", ["429"])
      expect(retryDelayOf(await proCall(gemini(sim.url)))).toBe("0.001s")
      sim.script("openrouter", ["429"])
      expect(headersOf(await orCall(openRouter(sim.url)))).toEqual({ retryAfter: "1", retryAfterMs: "1" })
    }))

  it("the openai SDK honours retry-after-ms: two scaled 429s cost milliseconds, not the seconds Retry-After says", () =>
    withSimulator({ timeScale: 0.01 }, async (sim) => {
      sim.script("openrouter", ["429", "429"])
      const client = new OpenAI({ apiKey: "sk-or-test", baseURL: `${sim.url}/api/v1`, maxRetries: 2 })
      const started = performance.now()
      expect(await orCall(client)).toBeUndefined()
      const elapsed = performance.now() - started
      expect(elapsed).toBeGreaterThanOrEqual(39) // 2 × 20 ms
      expect(elapsed).toBeLessThan(1_500) // Retry-After alone would be 2 × 1 s
      expect(sim.ledger().calls.map((call) => call.outcome)).toEqual(["429", "429", "ok"])
    }))
})

describe("an RPM 429 says how long until the window frees", () => {
  it("Gemini: RetryInfo is the time until the oldest call leaves the (scaled) minute; waiting exactly that long works", () =>
    // rpm 2 on a 0.03 time scale: a 1.8 s window
    withSimulator({ rpm: 2, timeScale: 0.03 }, async (sim) => {
      const flash = (client = gemini(sim.url)) =>
        thrownBy(client.models.generateContent({ model: "gemini-2.5-flash-image", contents: "x" }))
      // warm up (the SDK, the cached PNG) on another key, so the timed calls are quick
      const other = new GoogleGenAI({ apiKey: "warm-up", httpOptions: { baseUrl: sim.url } })
      expect(await flash(other)).toBeUndefined()
      const first = performance.now()
      expect(await flash()).toBeUndefined()
      await sleep(100)
      expect(await flash()).toBeUndefined()
      const gap = performance.now() - first // at least the time between the two calls reaching the simulator
      const limited = await flash()
      const sinceFirst = performance.now() - first
      expect((limited as ApiError).status).toBe(429)
      const wait = millisOf(retryDelayOf(limited))
      expect(wait).toBeLessThanOrEqual(1_800)
      expect(wait).toBeGreaterThanOrEqual(Math.floor(1_800 - sinceFirst))
      // half-way there it is still limited, with a shorter wait
      await sleep(wait / 2)
      const again = await flash()
      expect((again as ApiError).status).toBe(429)
      const rest = millisOf(retryDelayOf(again))
      expect(rest).toBeLessThan(wait)
      await sleep(rest)
      expect(await flash()).toBeUndefined()
      // now the window holds the second call and this one: the next slot frees when the second call leaves
      const third = await flash()
      expect(millisOf(retryDelayOf(third))).toBeGreaterThan(0)
      expect(millisOf(retryDelayOf(third))).toBeLessThanOrEqual(Math.ceil(gap))
      expect(sim.ledger().calls.map((call) => call.outcome)).toEqual([
        "ok",
        "ok",
        "ok",
        "rate-limited",
        "rate-limited",
        "ok",
        "rate-limited",
      ])
    }))

  it("at time scale 1: RetryInfo just under 60s, per key", () =>
    withSimulator({ rpm: 1 }, async (sim) => {
      const client = gemini(sim.url)
      expect(await proCall(client)).toBeUndefined()
      const wait = millisOf(retryDelayOf(await proCall(client)))
      expect(wait).toBeGreaterThan(55_000)
      expect(wait).toBeLessThanOrEqual(60_000)
      const other = new GoogleGenAI({ apiKey: "another-key", httpOptions: { baseUrl: sim.url } })
      expect(await proCall(other)).toBeUndefined()
    }))

  it("OpenRouter: Retry-After rounded up plus the exact retry-after-ms; the openai SDK waits it out and succeeds", () =>
    // rpm 1 on a 0.01 time scale: a 600 ms window
    withSimulator({ rpm: 1, timeScale: 0.01 }, async (sim) => {
      const client = openRouter(sim.url)
      expect(await orCall(client)).toBeUndefined()
      const limited = await orCall(client)
      expect((limited as APIError).status).toBe(429)
      const { retryAfter, retryAfterMs } = headersOf(limited)
      expect(retryAfter).toBe("1")
      expect(Number(retryAfterMs)).toBeGreaterThan(0)
      expect(Number(retryAfterMs)).toBeLessThanOrEqual(600)
      // a well-behaved client: the SDK's own retry (one), told exactly when to come back
      const patient = new OpenAI({ apiKey: "sk-or-test", baseURL: `${sim.url}/api/v1`, maxRetries: 1 })
      expect(await orCall(patient)).toBeUndefined()
      expect(sim.ledger().calls.map((call) => call.outcome)).toEqual(["ok", "rate-limited", "rate-limited", "ok"])
    }))

  it("at time scale 1 on OpenRouter: Retry-After 60 and retry-after-ms just under 60000", () =>
    withSimulator({ rpm: 1 }, async (sim) => {
      expect(await orCall(openRouter(sim.url))).toBeUndefined()
      const { retryAfter, retryAfterMs } = headersOf(await orCall(openRouter(sim.url)))
      expect(retryAfter).toBe("60")
      expect(Number(retryAfterMs ?? 60_000)).toBeGreaterThan(55_000) // no retry-after-ms when exactly 60 s
      expect(Number(retryAfterMs ?? 60_000)).toBeLessThanOrEqual(60_000)
    }))
})
