/**
 * The Gemini-native routes through the official `@google/genai` SDK (base URL pointed at the gateway) in
 * front of the simulator: sizes and ratios reach the upstream and come back at the right pixel size, the
 * answer has Gemini's shape and the x-peel-* headers.
 */
import { GoogleGenAI, HarmBlockThreshold, HarmCategory } from "@google/genai"
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

describe("the rest of the Gemini request reaches the upstream", () => {
  interface UpstreamBody {
    readonly contents: ReadonlyArray<{
      readonly parts: ReadonlyArray<{ readonly text?: string; readonly inlineData?: { readonly data: string } }>
    }>
  }
  const lastUpstreamBody = () => h.sim.requests().at(-1)!.body as UpstreamBody

  it("an edit with reference images: every inlineData part, in order, at the asked size", async () => {
    const first = await client().models.generateContent({
      model: "gemini-3-pro-image",
      contents: "a red fox, studio light",
      config: { imageConfig: { aspectRatio: "1:1", imageSize: "1K" } },
    })
    const fox = first.data!
    const response = await client().models.generateContent({
      model: "gemini-3-pro-image",
      contents: [
        {
          role: "user",
          parts: [
            { text: "the same fox, in snow, in the style of the second image" },
            { inlineData: { mimeType: "image/png", data: fox } },
            { inlineData: { mimeType: "image/png", data: fox } },
          ],
        },
      ],
      config: { imageConfig: { aspectRatio: "4:3", imageSize: "2K" } },
    })
    expect(pixelsOf(response.data!)).toEqual({ width: 2400, height: 1792 })
    const parts = lastUpstreamBody().contents[0]!.parts
    expect(parts[0]!.text).toBe("the same fox, in snow, in the style of the second image")
    expect(parts.slice(1).map((part) => part.inlineData?.data)).toEqual([fox, fox])
  })

  it("seed, responseModalities IMAGE, safetySettings and systemInstruction", async () => {
    const response = await client().models.generateContent({
      model: "gemini-3-pro-image",
      contents: "a paper crane",
      config: {
        seed: 1234,
        responseModalities: ["IMAGE"],
        systemInstruction: "flat vector style",
        safetySettings: [
          { category: HarmCategory.HARM_CATEGORY_HARASSMENT, threshold: HarmBlockThreshold.BLOCK_ONLY_HIGH },
        ],
      },
    })
    expect(response.data).toBeDefined()
    expect(lastUpstreamBody()).toMatchObject({
      generationConfig: { seed: 1234, responseModalities: ["IMAGE"] },
      safetySettings: [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_ONLY_HIGH" }],
      systemInstruction: { parts: [{ text: "flat vector style" }] },
    })
  })

  it("the model's text part comes back before the image, with usageMetadata", async () => {
    const response = await client().models.generateContent({ model: "nano-banana-pro", contents: "a teapot" })
    const parts = response.candidates![0]!.content!.parts!
    expect(parts[0]!.text).toEqual(expect.any(String))
    expect(parts[1]!.inlineData?.data).toEqual(expect.any(String))
    expect(response.candidates![0]!.finishReason).toBe("STOP")
    expect(response.usageMetadata?.candidatesTokenCount).toBeGreaterThan(0)
    expect(response.modelVersion).toBe("gemini-3-pro-image")
  })

  it(":streamGenerateContent?alt=sse through generateContentStream: one final chunk with the image", async () => {
    const chunks = []
    for await (const chunk of await client("v1beta").models.generateContentStream({
      model: "gemini-3-pro-image",
      contents: "a sailing boat",
      config: { imageConfig: { aspectRatio: "21:9", imageSize: "1K" } },
    }))
      chunks.push(chunk)
    expect(chunks).toHaveLength(1)
    expect(pixelsOf(chunks[0]!.data!)).toEqual({ width: 1584, height: 672 })
  })

  it("hints: x-peel-use picks the size, x-peel-priority picks the model for model auto", async () => {
    const response = await fetch(`${h.url}/v1beta/models/auto:generateContent`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-goog-api-key": "k",
        "x-peel-use": "hero",
        "x-peel-priority": "low",
      },
      body: JSON.stringify({ contents: [{ parts: [{ text: "a mountain hut" }] }] }),
    })
    expect(response.status).toBe(200)
    expect(response.headers.get("x-peel-model")).toBe("gemini-3.1-flash-image")
    const body = (await response.json()) as {
      candidates: Array<{ content: { parts: Array<{ inlineData?: { data: string } }> } }>
      modelVersion: string
    }
    const image = body.candidates[0]!.content.parts.find((part) => part.inlineData)!.inlineData!.data
    expect(pixelsOf(image)).toEqual({ width: 4096, height: 4096 })
    expect(body.modelVersion).toBe("gemini-3.1-flash-image")
    const bad = await fetch(`${h.url}/v1beta/models/auto:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-goog-api-key": "k", "x-peel-priority": "urgent" },
      body: JSON.stringify({ contents: [{ parts: [{ text: "a mountain hut" }] }] }),
    })
    expect(bad.status).toBe(400)
  })

  it("GET /v1beta/models through the SDK's pager lists the models the pipeline serves", async () => {
    const names: Array<string> = []
    for await (const model of await client("v1beta").models.list()) names.push(model.name ?? "")
    expect(names).toContain("models/gemini-3-pro-image")
    expect(names).toContain("models/gemini-3.1-flash-image")
    const one = await client("v1beta").models.get({ model: "gemini-3-pro-image" })
    expect(one.supportedActions ?? one.name).toBeDefined()
  })

  it("a repeat is answered from the cache at $0", async () => {
    const ask = () =>
      client().models.generateContent({
        model: "gemini-3-pro-image",
        contents: "a cached lantern",
        config: { seed: 99 },
      })
    const first = await ask()
    const again = await ask()
    expect(again.sdkHttpResponse?.headers?.["x-peel-cache"]).toBe("hit")
    expect(again.sdkHttpResponse?.headers?.["x-peel-cost-usd"]).toBe("0.000000")
    expect(again.sdkHttpResponse?.headers?.["x-peel-attempts"]).toBe("0")
    expect(again.data).toBe(first.data)
  })
})
