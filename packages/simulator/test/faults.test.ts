import { ApiError } from "@google/genai"
import { APIError } from "openai"
import { describe, expect, it, vi } from "vitest"
import { Simulator } from "../src/index.ts"
import { parseLatency, sampleLatency } from "../src/Latency.ts"
import { makeRandom } from "../src/Random.ts"
import { finalImage, gemini, imageRequest, openRouter, proxyChat, useSimulator } from "./helpers.ts"

const state = useSimulator({ timeScale: 0.001 })

const geminiCall = () =>
  gemini(state.sim.url).models.generateContent({
    model: "gemini-3-pro-image",
    contents: "a fox",
    config: imageRequest(),
  })

const thrownBy = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  )

const bodyOf = (error: unknown) =>
  JSON.parse((error as ApiError).message) as {
    error: { code: number; status: string; details?: Array<Record<string, unknown>> }
  }

describe("faults as @google/genai sees them (Gemini API)", () => {
  it("429: ApiError 429 with a parseable RetryInfo (34 s, time-scaled) and a per-minute QuotaFailure", async () => {
    state.sim.script("gemini", ["429"])
    const error = await thrownBy(geminiCall())
    expect(error).toBeInstanceOf(ApiError)
    expect((error as ApiError).status).toBe(429)
    const details = bodyOf(error).error.details!
    expect(details.find((detail) => String(detail["@type"]).endsWith("RetryInfo"))?.retryDelay).toBe("0.034s")
    expect(JSON.stringify(details)).toContain("PerMinute")
  })

  it("429-daily: a per-day quota violation and no RetryInfo", async () => {
    state.sim.script("gemini", ["429-daily"])
    const details = bodyOf(await thrownBy(geminiCall())).error.details!
    expect(JSON.stringify(details)).toContain("GenerateRequestsPerDayPerProjectPerModel")
    expect(details.some((detail) => String(detail["@type"]).endsWith("RetryInfo"))).toBe(false)
  })

  for (const [fault, status, googleStatus] of [
    ["500", 500, "INTERNAL"],
    ["503", 503, "UNAVAILABLE"],
    ["504", 504, "DEADLINE_EXCEEDED"],
    ["400", 400, "INVALID_ARGUMENT"],
    ["403", 403, "PERMISSION_DENIED"],
  ] as const) {
    it(`${fault}: ApiError ${status} ${googleStatus} in google.rpc.Status shape`, async () => {
      state.sim.script("gemini", [fault])
      const error = await thrownBy(geminiCall())
      expect((error as ApiError).status).toBe(status)
      expect(bodyOf(error).error).toMatchObject({ code: status, status: googleStatus })
    })
  }

  it("401: an invalid key is 400 INVALID_ARGUMENT with ErrorInfo API_KEY_INVALID, like Google", async () => {
    state.sim.script("gemini", ["401"])
    const body = bodyOf(await thrownBy(geminiCall()))
    expect(body.error.code).toBe(400)
    expect(JSON.stringify(body.error.details)).toContain("API_KEY_INVALID")
  })

  it("403 says billing is not enabled", async () => {
    state.sim.script("gemini", ["403"])
    expect(((await thrownBy(geminiCall())) as Error).message).toMatch(/billing/i)
  })

  it("html: a 502 HTML page that the SDK wraps as an ApiError", async () => {
    state.sim.script("gemini", ["html"])
    const error = await thrownBy(geminiCall())
    expect((error as ApiError).status).toBe(502)
    expect((error as Error).message).toContain("Bad Gateway")
  })

  it("malformed: a 200 whose JSON is cut short makes the SDK throw a parse error", async () => {
    state.sim.script("gemini", ["malformed"])
    const error = await thrownBy(geminiCall())
    expect(error).toBeInstanceOf(Error)
    expect(error).not.toBeInstanceOf(ApiError)
  })

  it("safety: HTTP 200, finishReason IMAGE_SAFETY, no image", async () => {
    state.sim.script("gemini", ["safety"])
    const response = await geminiCall()
    expect(response.candidates?.[0]?.finishReason).toBe("IMAGE_SAFETY")
    expect(finalImage(response).length).toBe(0)
  })

  it("blocked: HTTP 200, promptFeedback.blockReason, no candidates", async () => {
    state.sim.script("gemini", ["blocked"])
    const response = await geminiCall()
    expect(response.promptFeedback?.blockReason).toBe("PROHIBITED_CONTENT")
    expect(response.candidates).toBeUndefined()
  })

  it("text-only: text and no image", async () => {
    state.sim.script("gemini", ["text-only"])
    const response = await geminiCall()
    expect(finalImage(response).length).toBe(0)
    expect(response.candidates?.[0]?.content?.parts?.some((part) => typeof part.text === "string")).toBe(true)
  })

  it("truncated: the image's base64 is cut in half", async () => {
    state.sim.script("gemini", ["truncated"])
    const bytes = finalImage(await geminiCall())
    expect(bytes.length).toBeGreaterThan(0)
    expect(bytes.subarray(-8).toString("latin1")).not.toContain("IEND")
  })

  it("markdown-image: the image arrives as a markdown data-URI in a text part", async () => {
    state.sim.script("gemini", ["markdown-image"])
    const response = await geminiCall()
    expect(response.candidates?.[0]?.content?.parts?.[0]?.text).toMatch(/!\[image\]\(data:image\/png;base64,/)
  })

  it("jpeg: an image/jpeg answer", async () => {
    state.sim.script("gemini", ["jpeg"])
    const parts = (await geminiCall()).candidates?.[0]?.content?.parts ?? []
    expect(parts.find((part) => part.inlineData !== undefined)?.inlineData?.mimeType).toBe("image/jpeg")
  })

  it("hang: never answers; the client's abort is recorded as clientWentAway", async () => {
    state.sim.script("gemini", ["hang"])
    const controller = new AbortController()
    const call = gemini(state.sim.url).models.generateContent({
      model: "gemini-3-pro-image",
      contents: "x",
      config: { ...imageRequest(), abortSignal: controller.signal },
    })
    setTimeout(() => controller.abort(), 100)
    const error = await thrownBy(call)
    expect((error as Error).name).toBe("AbortError")
    // The simulator notices the closed connection a moment later: wait for the ledger to say so.
    await vi.waitFor(() => expect(state.sim.ledger().calls[0]).toMatchObject({ clientWentAway: true }), {
      timeout: 10_000,
      interval: 10,
    })
    expect(state.sim.ledger().calls[0]).toMatchObject({ outcome: "hang", clientWentAway: true })
    expect(state.sim.ledger().totals.billedImages).toBe(0)
  })

  it("slow: answers only after a long (scaled) delay", async () => {
    state.sim.script("gemini", ["slow"])
    const started = performance.now()
    await geminiCall()
    expect(performance.now() - started).toBeGreaterThanOrEqual(100) // 120 s × 0.001
  })

  it("failed answers are not billed; the ledger says what each call was", async () => {
    state.sim.script("gemini", ["503", "ok"])
    await thrownBy(geminiCall())
    await geminiCall()
    const ledger = state.sim.ledger()
    expect(ledger.calls.map((call) => [call.outcome, call.status])).toEqual([
      ["503", 503],
      ["ok", 200],
    ])
    expect(ledger.totals.billedImages).toBe(1)
  })
})

describe("faults as the openai SDK sees them (OpenRouter and proxy chat)", () => {
  const orCall = () =>
    openRouter(state.sim.url).chat.completions.create({
      model: "google/gemini-3-pro-image",
      messages: [{ role: "user", content: "x" }],
      // @ts-expect-error OpenRouter extensions pass through the SDK unchanged
      modalities: ["image", "text"],
      image_config: { aspect_ratio: "16:9", image_size: "2K" },
    })

  it("402: a plain APIError (no subclass) with status 402", async () => {
    state.sim.script("openrouter", ["402"])
    const error = await thrownBy(orCall())
    expect(error).toBeInstanceOf(APIError)
    expect((error as APIError).constructor.name).toBe("APIError")
    expect((error as APIError).status).toBe(402)
  })

  it("429: RateLimitError with Retry-After (2 s, time-scaled), and exactly one call with maxRetries: 0", async () => {
    state.sim.script("openrouter", ["429"])
    const error = (await thrownBy(orCall())) as APIError
    expect(error.status).toBe(429)
    expect(error.headers?.get("retry-after")).toBe("1")
    expect(error.headers?.get("retry-after-ms")).toBe("2")
    expect(state.sim.ledger().totals.calls).toBe(1)
  })

  for (const status of ["400", "401", "403", "500", "502", "503"] as const) {
    it(`${status}: OpenRouter's error body`, async () => {
      state.sim.script("openrouter", [status])
      const error = (await thrownBy(orCall())) as APIError
      expect(error.status).toBe(Number(status))
      expect((error.error as { metadata?: { error_type?: string } }).metadata?.error_type).toBeDefined()
    })
  }

  it("ok: the image in message.images, usage.cost at Google's price plus markup", async () => {
    const completion = (await orCall()) as unknown as {
      choices: Array<{ message: { images: Array<{ image_url: { url: string } }> } }>
      usage: { cost: number }
    }
    expect(completion.choices[0]!.message.images[0]!.image_url.url).toMatch(/^data:image\/png;base64,/)
    expect(completion.usage.cost).toBe(state.sim.ledger().billed[0]!.usd)
    expect(state.sim.requests()[0]!.body).toMatchObject({
      modalities: ["image", "text"],
      image_config: { aspect_ratio: "16:9", image_size: "2K" },
    })
  })

  it("error-in-200: an error object inside a 200 body", async () => {
    state.sim.script("openrouter", ["error-in-200"])
    const completion = (await orCall()) as unknown as { error: { code: number } }
    expect(completion.error.code).toBe(502)
  })

  it("safety: finish_reason content_filter and no images", async () => {
    state.sim.script("openrouter", ["safety"])
    const completion = (await orCall()) as unknown as {
      choices: Array<{ finish_reason: string; message: { images: unknown[] } }>
    }
    expect(completion.choices[0]!.finish_reason).toBe("content_filter")
    expect(completion.choices[0]!.message.images).toEqual([])
  })

  it("proxy chat: a markdown data-URI in content, always 1K 1:1, $0.05 flat", async () => {
    const completion = await proxyChat(state.sim.url).chat.completions.create({
      model: "gemini-3-pro-image",
      messages: [{ role: "user", content: "x" }],
    })
    const content = completion.choices[0]!.message.content!
    const base64 = /!\[image\]\(data:image\/png;base64,([^)]+)\)/.exec(content)![1]!
    expect(Buffer.from(base64, "base64").readUInt32BE(16)).toBe(1024)
    expect(state.sim.ledger().billed[0]).toMatchObject({ usd: 0.05, tier: "flat", size: "1K", aspectRatio: "1:1" })
  })

  it("proxy chat with malformed and html faults", async () => {
    state.sim.script("proxy-chat", ["malformed", "html"])
    const client = proxyChat(state.sim.url)
    const call = () =>
      client.chat.completions.create({ model: "gemini-3-pro-image", messages: [{ role: "user", content: "x" }] })
    expect(await thrownBy(call())).toBeInstanceOf(Error)
    expect(((await thrownBy(call())) as APIError).status).toBe(502)
  })
})

describe("probabilistic faults, latency and rate limits", () => {
  it("parses fault specs and rejects bad ones with a readable message", () => {
    expect(Simulator.parseFaults("429=0.2,503=0.05,hang=0.01")).toEqual([
      { kind: "429", probability: 0.2 },
      { kind: "503", probability: 0.05 },
      { kind: "hang", probability: 0.01 },
    ])
    expect(Simulator.parseFaults("openrouter:402=1")).toEqual([{ kind: "402", probability: 1, route: "openrouter" }])
    expect(() => Simulator.parseFaults("429=2")).toThrow(/between 0 and 1/)
    expect(() => Simulator.parseFaults("teapot=0.1")).toThrow(/unknown fault kind "teapot"/)
    expect(() => Simulator.parseLatency("lognormal:median=2s")).toThrow(/median and p99/)
  })

  it("draws faults at the configured rate, reproducibly per seed", async () => {
    const run = async () => {
      const sim = await Simulator.start({ port: 0, seed: 42, faults: "503=0.3" })
      const outcomes: Array<number> = []
      const client = gemini(sim.url)
      for (let index = 0; index < 60; index++) {
        const error = await thrownBy(
          client.models.generateContent({ model: "gemini-2.5-flash-image", contents: `p${index}` }),
        )
        outcomes.push(error === undefined ? 200 : (error as ApiError).status)
      }
      await sim.stop()
      return outcomes
    }
    const first = await run()
    const failures = first.filter((status) => status === 503).length
    expect(failures).toBeGreaterThan(8)
    expect(failures).toBeLessThan(32)
    expect(await run()).toEqual(first)
  })

  it("long-tail latency, scaled by the time scale", async () => {
    const spec = "lognormal:median=2s,p99=20s"
    const sim = await Simulator.start({ port: 0, seed: 3, latency: spec, timeScale: 0.01 })
    const client = gemini(sim.url)
    // What the simulator waits, seen where it waits (setTimeout): no stopwatch on a busy machine.
    const delays: Array<number> = []
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
      for (let index = 0; index < 5; index++)
        await client.models.generateContent({ model: "gemini-2.5-flash-image", contents: "x" })
    } finally {
      vi.restoreAllMocks()
      await sim.stop()
    }
    // The same seed draws the same long tail; each draw is scaled by the time scale (2 s median → ~20 ms).
    const random = makeRandom(3)
    const drawn = Array.from({ length: 5 }, () => sampleLatency(parseLatency(spec), random))
    expect(drawn.filter((millis) => millis > 500).length).toBeGreaterThan(2) // unscaled: seconds, mostly
    for (const millis of drawn) expect(delays).toContainEqual(expect.closeTo(millis * 0.01, 6))
  })

  it("per-key RPM limit answers 429 RESOURCE_EXHAUSTED like Google, per key", async () => {
    const sim = await Simulator.start({ port: 0, rpm: 2 })
    const call = (key: string) =>
      thrownBy(
        new (gemini(sim.url).constructor as typeof import("@google/genai").GoogleGenAI)({
          apiKey: key,
          httpOptions: { baseUrl: sim.url },
        }).models.generateContent({
          model: "gemini-2.5-flash-image",
          contents: "x",
        }),
      )
    expect(await call("a")).toBeUndefined()
    expect(await call("a")).toBeUndefined()
    const limited = await call("a")
    expect((limited as ApiError).status).toBe(429)
    expect(bodyOf(limited).error.status).toBe("RESOURCE_EXHAUSTED")
    expect(await call("b")).toBeUndefined()
    expect(sim.ledger().calls.map((entry) => entry.outcome)).toEqual(["ok", "ok", "rate-limited", "ok"])
    await sim.stop()
  })
})
