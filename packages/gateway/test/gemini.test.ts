/**
 * The Gemini-native routes through the official `@google/genai` SDK (base URL pointed at the gateway) in
 * front of the simulator: sizes and ratios reach the upstream and come back at the right pixel size, the
 * answer has Gemini's shape and the x-peel-* headers.
 */
import { GoogleGenAI } from "@google/genai"
import { imageSize } from "image-size"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Harness, startGateway, upstreamKey } from "./harness.ts"

let h: Harness
beforeAll(async () => {
  h = await startGateway()
})
afterAll(async () => {
  await h?.close()
})

const client = (apiVersion?: string) =>
  new GoogleGenAI({
    apiKey: "any-client-key",
    httpOptions: { baseUrl: h.url, ...(apiVersion === undefined ? {} : { apiVersion }) },
  })

const pixelsOf = (base64: string) => {
  const { width, height } = imageSize(Buffer.from(base64, "base64"))
  return { width, height }
}

describe("POST /v1beta/models/{model}:generateContent through @google/genai", () => {
  it("4K 16:9 returns a 5504x3072 image; imageConfig reaches the upstream", async () => {
    h.sim.reset()
    const response = await client("v1beta").models.generateContent({
      model: "gemini-3-pro-image",
      contents: "a lighthouse at dusk",
      config: { responseModalities: ["TEXT", "IMAGE"], imageConfig: { aspectRatio: "16:9", imageSize: "4K" } },
    })
    const part = response.candidates?.[0]?.content?.parts?.find((p) => p.inlineData !== undefined)
    expect(part?.inlineData?.mimeType).toMatch(/^image\//)
    expect(pixelsOf(part!.inlineData!.data!)).toEqual({ width: 5504, height: 3072 })
    expect(response.modelVersion).toBe("gemini-3-pro-image")
    expect(response.usageMetadata?.totalTokenCount).toBeGreaterThan(0)
    const headers = response.sdkHttpResponse?.headers ?? {}
    expect(headers["x-peel-request-id"]).toMatch(/^req-[0-9a-f]{20}$/)
    // What the upstream billed for this one call (the 4K image and the prompt's tokens).
    expect(h.sim.ledger().totals.billedImages).toBe(1)
    expect(Number(headers["x-peel-cost-usd"])).toBeGreaterThanOrEqual(0.24)
    expect(Number(headers["x-peel-cost-usd"])).toBeCloseTo(h.sim.ledger().totals.billedUsd, 4)
    expect(headers["x-peel-channel"]).toBe("google")
    expect(headers["x-peel-model"]).toBe("gemini-3-pro-image")
    expect(headers["x-peel-attempts"]).toBe("1")
    expect(headers["x-peel-cache"]).toBe("miss")
    const upstream = h.sim.requests().at(-1)!
    expect(upstream.body).toMatchObject({
      generationConfig: { imageConfig: { aspectRatio: "16:9", imageSize: "4K" } },
    })
  })

  it("2K 9:16 through the SDK's default /v1/ path returns 1536x2752", async () => {
    const response = await client().models.generateContent({
      model: "gemini-3-pro-image",
      contents: "a tall waterfall",
      config: { imageConfig: { aspectRatio: "9:16", imageSize: "2K" } },
    })
    expect(pixelsOf(response.data!)).toEqual({ width: 1536, height: 2752 })
  })

  it("never sends the upstream key to the client or the log", async () => {
    const response = await fetch(`${h.url}/v1beta/models/gemini-3-pro-image:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-goog-api-key": "k" },
      body: JSON.stringify({ contents: [{ parts: [{ text: "a blue cube" }] }] }),
    })
    const text = await response.text()
    expect(response.status).toBe(200)
    expect(text).not.toContain(upstreamKey)
    expect(JSON.stringify([...response.headers])).not.toContain(upstreamKey)
    expect(h.logs.join("")).not.toContain(upstreamKey)
  })
})
