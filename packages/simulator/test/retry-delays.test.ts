/**
 * The retry delays the simulator advertises follow its time scale, and an RPM 429 says when the window frees.
 * The rpm windows run on a clock the test moves (`clock` option), so every delay is exact and nothing here
 * depends on how fast the machine is; where an SDK waits, the test checks what it was told to wait.
 */
import { type ApiError, GoogleGenAI } from "@google/genai"
import OpenAI, { type APIError } from "openai"
import { afterEach, describe, expect, it, vi } from "vitest"
import { Simulator } from "../src/index.ts"
import { retryAfterHeaders, retryDelayText, scaledMillis } from "../src/RetryHint.ts"
import { gemini, openRouter, proxyChat, vertexExpress, vertexProject } from "./helpers.ts"

const thrownBy = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  )

/** A clock the test moves by hand: `now.millis += 100`. */
const manualClock = () => {
  const now = { millis: 1_800_000_000_000 }
  return { now, clock: () => now.millis }
}

/** Every delay handed to `setTimeout` while `use` runs (what an SDK was told to wait, among others). */
const timersDuring = async <A>(use: () => Promise<A>): Promise<{ readonly result: A; readonly delays: number[] }> => {
  const delays: number[] = []
  const original = globalThis.setTimeout
  vi.spyOn(globalThis, "setTimeout").mockImplementation(((
    callback: (...args: Array<unknown>) => void,
    millis?: number,
    ...args: Array<unknown>
  ) => {
    delays.push(Number(millis ?? 0))
    return original(callback, millis, ...args)
  }) as typeof setTimeout)
  try {
    return { result: await use(), delays }
  } finally {
    vi.restoreAllMocks()
  }
}
afterEach(() => {
  vi.restoreAllMocks()
})

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
      const { result, delays } = await timersDuring(() => orCall(client))
      expect(result).toBeUndefined()
      // The SDK slept what retry-after-ms said (20 ms, twice), never the whole second Retry-After says.
      expect(delays.filter((millis) => millis === 20)).toHaveLength(2)
      expect(delays).not.toContain(1_000)
      expect(sim.ledger().calls.map((call) => call.outcome)).toEqual(["429", "429", "ok"])
    }))
})

describe("an RPM 429 says how long until the window frees", () => {
  it("Gemini: RetryInfo is the time until the oldest call leaves the (scaled) minute; waiting exactly that long works", () => {
    // rpm 2 on a 0.03 time scale: a 1.8 s window, on a clock the test moves
    const { now, clock } = manualClock()
    return withSimulator({ rpm: 2, timeScale: 0.03, clock }, async (sim) => {
      const flash = (client = gemini(sim.url)) =>
        thrownBy(client.models.generateContent({ model: "gemini-2.5-flash-image", contents: "x" }))
      // another key has its own window
      expect(await flash(new GoogleGenAI({ apiKey: "other-key", httpOptions: { baseUrl: sim.url } }))).toBeUndefined()
      expect(await flash()).toBeUndefined()
      now.millis += 100
      expect(await flash()).toBeUndefined()
      const limited = await flash()
      expect((limited as ApiError).status).toBe(429)
      // the first call leaves the window 1 800 ms after it was made, 1 700 ms from now
      const wait = millisOf(retryDelayOf(limited))
      expect(wait).toBe(1_700)
      // half-way there it is still limited, with the rest of the wait
      now.millis += wait / 2
      const again = await flash()
      expect((again as ApiError).status).toBe(429)
      const rest = millisOf(retryDelayOf(again))
      expect(rest).toBe(850)
      // one millisecond short of it: still limited; exactly that long: allowed
      now.millis += rest - 1
      expect((await flash()) as ApiError).toMatchObject({ status: 429 })
      now.millis += 1
      expect(await flash()).toBeUndefined()
      // now the window holds the second call and this one: the next slot frees when the second call leaves
      const third = await flash()
      expect(millisOf(retryDelayOf(third))).toBe(100)
      expect(sim.ledger().calls.map((call) => call.outcome)).toEqual([
        "ok",
        "ok",
        "ok",
        "rate-limited",
        "rate-limited",
        "rate-limited",
        "ok",
        "rate-limited",
      ])
    })
  })

  it("at time scale 1: RetryInfo is what is left of the minute, per key", () => {
    const { now, clock } = manualClock()
    return withSimulator({ rpm: 1, clock }, async (sim) => {
      const client = gemini(sim.url)
      expect(await proCall(client)).toBeUndefined()
      expect(millisOf(retryDelayOf(await proCall(client)))).toBe(60_000)
      now.millis += 1_500
      expect(millisOf(retryDelayOf(await proCall(client)))).toBe(58_500)
      const other = new GoogleGenAI({ apiKey: "another-key", httpOptions: { baseUrl: sim.url } })
      expect(await proCall(other)).toBeUndefined()
    })
  })

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

  it("at time scale 1 on OpenRouter: Retry-After 60 at first, then rounded up with the exact retry-after-ms", () => {
    const { now, clock } = manualClock()
    return withSimulator({ rpm: 1, clock }, async (sim) => {
      expect(await orCall(openRouter(sim.url))).toBeUndefined()
      // exactly 60 s: whole seconds say it all, no retry-after-ms
      expect(headersOf(await orCall(openRouter(sim.url)))).toEqual({ retryAfter: "60", retryAfterMs: undefined })
      now.millis += 1_500
      expect(headersOf(await orCall(openRouter(sim.url)))).toEqual({ retryAfter: "59", retryAfterMs: "58500" })
    })
  })
})
