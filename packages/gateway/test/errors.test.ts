/**
 * Every error class through `@google/genai`: the SDK raises its own typed `ApiError` with the right HTTP
 * status, the body is `google.rpc.Status` with Google's status name, 429/503 carry Retry-After and
 * RetryInfo, every answer has the x-peel-* headers, and nothing holds the upstream key. The key is read
 * from x-goog-api-key, ?key= and Authorization: Bearer.
 */
import { ApiError, GoogleGenAI } from "@google/genai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Harness, startGateway, upstreamKey } from "./harness.ts"
import * as Policy from "./policy.ts"

let h: Harness
beforeAll(async () => {
  h = await startGateway({ gateway: { keyPolicy: Policy.layer } })
})
afterAll(async () => {
  await h?.close()
})

const ai = (apiKey: string) => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: h.url } })

const errorOf = async (promise: Promise<unknown>): Promise<ApiError> => {
  try {
    await promise
  } catch (error) {
    if (error instanceof ApiError) return error
    throw error
  }
  throw new Error("expected an ApiError")
}

const bodyOf = (error: ApiError) => JSON.parse(error.message) as { error: Record<string, unknown> }

const generate = (apiKey: string, model = "gemini-3-pro-image", config: object = {}) =>
  ai(apiKey).models.generateContent({ model, contents: "a red fox", config })

const post = (path: string, init: { headers?: Record<string, string>; body?: string } = {}) =>
  fetch(`${h.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...init.headers },
    body: init.body ?? JSON.stringify({ contents: [{ parts: [{ text: "a red fox" }] }] }),
  })

const peelHeaderNames = [
  "x-peel-request-id",
  "x-peel-cost-usd",
  "x-peel-channel",
  "x-peel-model",
  "x-peel-attempts",
  "x-peel-cache",
]

describe("the client's key", () => {
  const path = "/v1beta/models/gemini-3-pro-image:generateContent"
  it("is read from x-goog-api-key, ?key= and Authorization: Bearer", async () => {
    for (const init of [
      { path, headers: { "x-goog-api-key": Policy.keys.good } },
      { path: `${path}?key=${Policy.keys.good}`, headers: {} },
      { path, headers: { authorization: `Bearer ${Policy.keys.good}` } },
    ]) {
      Policy.seen.length = 0
      const response = await post(init.path, { headers: init.headers })
      expect(response.status).toBe(200)
      expect(Policy.seen).toEqual([Policy.keys.good])
    }
  })

  it("never reaches the access log, not even from ?key=", async () => {
    await post(`${path}?key=${Policy.keys.good}`)
    const lines = h.logs.map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(lines.length).toBeGreaterThan(0)
    expect(h.logs.join("")).not.toContain(Policy.keys.good)
    expect(lines.at(-1)).toMatchObject({ type: "access", path, key: "good", status: 200 })
  })
})

describe("every error class is the SDK's ApiError with the right status", () => {
  it("401 UNAUTHENTICATED for an unknown key", async () => {
    const error = await errorOf(generate("not-a-key"))
    expect(error.status).toBe(401)
    expect(bodyOf(error).error).toMatchObject({ code: 401, status: "UNAUTHENTICATED" })
  })

  it("401 for no key at all", async () => {
    const response = await post("/v1beta/models/gemini-3-pro-image:generateContent")
    expect(response.status).toBe(401)
  })

  it("403 PERMISSION_DENIED for a model the key may not use", async () => {
    const error = await errorOf(generate(Policy.keys.forbidden))
    expect(error.status).toBe(403)
    expect(bodyOf(error).error).toMatchObject({ status: "PERMISSION_DENIED" })
  })

  it("429 RESOURCE_EXHAUSTED with Retry-After for the key's rpm and for its budget", async () => {
    for (const [key, seconds, reason] of [
      [Policy.keys.rpm, 42, "KEY_RATE_LIMITED"],
      [Policy.keys.budget, 3600, "KEY_BUDGET_EXHAUSTED"],
    ] as const) {
      const error = await errorOf(generate(key))
      expect(error.status).toBe(429)
      const body = bodyOf(error).error
      expect(body.status).toBe("RESOURCE_EXHAUSTED")
      expect(body.details).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ reason }),
          { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${seconds}s` },
        ]),
      )
      const response = await post("/v1beta/models/gemini-3-pro-image:generateContent", {
        headers: { "x-goog-api-key": key },
      })
      expect(response.headers.get("retry-after")).toBe(String(seconds))
    }
  })

  it("404 NOT_FOUND for an unknown model", async () => {
    const error = await errorOf(generate(Policy.keys.good, "gemini-9-ultra-image"))
    expect(error.status).toBe(404)
    expect(bodyOf(error).error).toMatchObject({ status: "NOT_FOUND" })
  })

  it("400 INVALID_ARGUMENT naming the field for a bad imageConfig", async () => {
    const error = await errorOf(generate(Policy.keys.good, "gemini-3-pro-image", { imageConfig: { imageSize: "2k" } }))
    expect(error.status).toBe(400)
    expect(bodyOf(error).error).toMatchObject({ status: "INVALID_ARGUMENT" })
    expect(String(bodyOf(error).error.message)).toContain("generationConfig.imageConfig.imageSize")
  })

  it("413 for a body over the limit", async () => {
    const response = await post("/v1beta/models/gemini-3-pro-image:generateContent", {
      headers: { "x-goog-api-key": Policy.keys.good },
      body: JSON.stringify({ contents: [{ parts: [{ text: "x".repeat(50 * 1024 * 1024) }] }] }),
    })
    expect(response.status).toBe(413)
    expect(((await response.json()) as { error: { status: string } }).error.status).toBe("INVALID_ARGUMENT")
  })

  it("503 UNAVAILABLE with Retry-After when every path failed (no placeholder), the key never echoed", async () => {
    h.sim.reset()
    h.sim.setFaults("echo-key=1")
    try {
      // A prompt of its own: a cached image would be answered without any upstream.
      const error = await errorOf(generate(Policy.keys.good, "gemini-3-pro-image", { seed: 503 }))
      expect(error.status).toBe(503)
      expect(bodyOf(error).error).toMatchObject({ code: 503, status: "UNAVAILABLE" })
      expect(error.message).not.toContain(upstreamKey)
      const response = await post("/v1beta/models/gemini-3-pro-image:generateContent", {
        headers: { "x-goog-api-key": Policy.keys.good },
        body: JSON.stringify({ contents: [{ parts: [{ text: "a fox that fails everywhere" }] }] }),
      })
      expect(response.status).toBe(503)
      expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
      expect(await response.text()).not.toContain(upstreamKey)
      expect(JSON.stringify([...response.headers])).not.toContain(upstreamKey)
      expect(h.sim.ledger().totals.calls).toBeGreaterThan(0)
    } finally {
      h.sim.reset()
    }
  })

  it("a safety block as Gemini reports it: 200, IMAGE_SAFETY or promptFeedback.blockReason, no image", async () => {
    h.sim.script("gemini", ["safety"])
    const image = await generate(Policy.keys.good, "gemini-3-pro-image", { seed: 101 })
    expect(image.candidates?.[0]?.finishReason).toBe("IMAGE_SAFETY")
    expect(image.data).toBeUndefined()
    h.sim.script("gemini", ["blocked"])
    const prompt = await generate(Policy.keys.good, "gemini-3-pro-image", { seed: 102 })
    expect(prompt.promptFeedback?.blockReason).toBeDefined()
    expect(prompt.candidates).toBeUndefined()
  })

  it("every answer, error or not, carries the six x-peel-* headers and never the upstream key", async () => {
    const answers = [
      await post("/v1beta/models/gemini-3-pro-image:generateContent", { headers: { "x-goog-api-key": "bad" } }),
      await post("/v1beta/models/nope:generateContent", { headers: { "x-goog-api-key": Policy.keys.good } }),
      await post("/v1beta/models/gemini-3-pro-image:generateContent", {
        headers: { "x-goog-api-key": Policy.keys.good },
        body: "{not json",
      }),
      await post("/v1beta/models/gemini-3-pro-image:generateContent", {
        headers: { "x-goog-api-key": Policy.keys.good },
      }),
      await fetch(`${h.url}/v1beta/models?key=${Policy.keys.good}`),
      await fetch(`${h.url}/healthz`),
      await fetch(`${h.url}/no/such/route`),
    ]
    for (const response of answers) {
      for (const name of peelHeaderNames) expect(response.headers.get(name), name).not.toBeNull()
      expect(await response.text()).not.toContain(upstreamKey)
    }
    expect(answers.map((response) => response.status)).toEqual([401, 404, 400, 200, 200, 200, 404])
    expect(h.logs.join("")).not.toContain(upstreamKey)
  })
})
