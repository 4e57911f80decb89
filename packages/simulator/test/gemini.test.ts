import { ApiError } from "@google/genai"
import { Catalog } from "@peel/core"
import { imageSize } from "image-size"
import { describe, expect, it } from "vitest"
import { finalImage, gemini, imageRequest, useSimulator, vertexExpress, vertexProject } from "./helpers.ts"

const state = useSimulator()

describe("Gemini generateContent through @google/genai", () => {
  it("serves /v1 (SDK 3.x default) with a real PNG of the exact size and correct usageMetadata", async () => {
    const response = await gemini(state.sim.url).models.generateContent({
      model: "gemini-3-pro-image",
      contents: "a red fox",
      config: imageRequest("16:9", "4K"),
    })
    const size = imageSize(finalImage(response))
    expect([size.type, size.width, size.height]).toEqual(["png", 5504, 3072])
    expect(response.usageMetadata?.candidatesTokensDetails).toEqual([{ modality: "IMAGE", tokenCount: 2000 }])
    expect(response.candidates?.[0]?.finishReason).toBe("STOP")
    const recorded = state.sim.requests().at(-1)!
    expect([recorded.route, recorded.path, recorded.headers["x-goog-api-key"]]).toEqual([
      "gemini",
      "/v1/models/gemini-3-pro-image:generateContent",
      "test-key",
    ])
  })

  it("serves /v1beta too, and 1120 / 1290 image tokens for Pro 2K and Flash", async () => {
    const pro = await gemini(state.sim.url, "v1beta").models.generateContent({
      model: "gemini-3-pro-image-preview",
      contents: "x",
      config: imageRequest("1:1", "2K"),
    })
    expect(pro.usageMetadata?.candidatesTokensDetails?.[0]?.tokenCount).toBe(1120)
    expect(imageSize(finalImage(pro)).width).toBe(2048)
    const flash = await gemini(state.sim.url, "v1beta").models.generateContent({
      model: "gemini-2.5-flash-image",
      contents: "x",
      config: { imageConfig: { aspectRatio: "21:9" } },
    })
    expect(flash.usageMetadata?.candidatesTokensDetails?.[0]?.tokenCount).toBe(1290)
    expect([imageSize(finalImage(flash)).width, imageSize(finalImage(flash)).height]).toEqual([1536, 672])
    expect(state.sim.requests().map((request) => request.path)).toEqual([
      "/v1beta/models/gemini-3-pro-image-preview:generateContent",
      "/v1beta/models/gemini-2.5-flash-image:generateContent",
    ])
  })

  it("makes every catalog model × size × aspect ratio at the catalog's pixel size", async () => {
    const client = gemini(state.sim.url)
    for (const [model, info] of Object.entries(Catalog.models))
      for (const size of info.acceptsImageSize ? info.sizes : Catalog.Sizes)
        for (const ratio of info.aspectRatios.filter((ratio) =>
          ["1:1", "3:4", "9:16", "21:9", "1:4", "8:1"].includes(ratio),
        )) {
          const response = await client.models.generateContent({
            model,
            contents: `${model} ${size} ${ratio}`,
            config: imageRequest(ratio, size),
          })
          const found = imageSize(finalImage(response))
          expect([found.width, found.height]).toEqual([...Catalog.dimensionsOf(model, size, ratio)!])
        }
  }, 120_000) // dozens of real PNGs up to 4K, one after another: ~30 s on a busy 2-core machine

  it("accepts the key as ?key= and rejects a call without credentials in Google's shape", async () => {
    const withQuery = await fetch(`${state.sim.url}/v1beta/models/gemini-3-pro-image:generateContent?key=abc`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ contents: [{ parts: [{ text: "x" }] }] }),
    })
    expect(withQuery.status).toBe(200)
    const anonymous = await fetch(`${state.sim.url}/v1beta/models/gemini-3-pro-image:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ contents: [{ parts: [{ text: "x" }] }] }),
    })
    expect(anonymous.status).toBe(403)
    expect((await anonymous.json()).error.status).toBe("PERMISSION_DENIED")
  })

  it("serves Nano Banana 2 at 512 and 1:8, and refuses 512 and 1:4 from Pro (400)", async () => {
    const client = gemini(state.sim.url)
    const small = await client.models.generateContent({
      model: "gemini-3.1-flash-image",
      contents: "x",
      config: imageRequest("1:8", "512"),
    })
    expect(small.usageMetadata?.candidatesTokensDetails?.[0]?.tokenCount).toBe(747)
    expect([imageSize(finalImage(small)).width, imageSize(finalImage(small)).height]).toEqual([192, 1536])
    for (const [ratio, size] of [
      ["1:1", "512"],
      ["1:4", "1K"],
    ] as const) {
      const refused = await client.models
        .generateContent({ model: "gemini-3-pro-image", contents: "x", config: imageRequest(ratio, size) })
        .catch((error: unknown) => error)
      expect((refused as ApiError).status).toBe(400)
    }
  })

  it("rejects an unknown model (404) and a lowercase size (400) as Google does", async () => {
    const client = gemini(state.sim.url)
    const unknown = await client.models
      .generateContent({ model: "gemini-9-image", contents: "x" })
      .catch((error: unknown) => error)
    expect(unknown).toBeInstanceOf(ApiError)
    expect((unknown as ApiError).status).toBe(404)
    const lower = await client.models
      .generateContent({ model: "gemini-3-pro-image", contents: "x", config: imageRequest("1:1", "1k") })
      .catch((error: unknown) => error)
    expect((unknown as ApiError).status).toBe(404)
    expect((lower as ApiError).status).toBe(400)
    expect(JSON.parse((lower as ApiError).message).error.status).toBe("INVALID_ARGUMENT")
  })

  it("streams with :streamGenerateContent?alt=sse", async () => {
    const stream = await gemini(state.sim.url).models.generateContentStream({
      model: "gemini-3-pro-image",
      contents: "x",
      config: imageRequest(),
    })
    const chunks = []
    for await (const chunk of stream) chunks.push(chunk)
    expect(chunks).toHaveLength(1)
    expect(imageSize(finalImage(chunks[0]!)).width).toBe(1024)
  })

  it("speaks Vertex AI in project mode (Bearer) and express mode (API key)", async () => {
    const project = await vertexProject(state.sim.url).models.generateContent({
      model: "gemini-3-pro-image",
      contents: "v",
      config: imageRequest("4:3", "2K"),
    })
    expect([imageSize(finalImage(project)).width, imageSize(finalImage(project)).height]).toEqual([2400, 1792])
    const express = await vertexExpress(state.sim.url).models.generateContent({
      model: "gemini-3-pro-image",
      contents: "v",
      config: imageRequest(),
    })
    expect(imageSize(finalImage(express)).width).toBe(1024)
    const [first, second] = state.sim.requests()
    expect([first!.route, first!.path, first!.headers.authorization]).toEqual([
      "vertex",
      "/v1beta1/projects/p1/locations/global/publishers/google/models/gemini-3-pro-image:generateContent",
      "Bearer test-token",
    ])
    expect([second!.route, second!.path, second!.headers["x-goog-api-key"]]).toEqual([
      "vertex-express",
      "/v1beta1/publishers/google/models/gemini-3-pro-image:generateContent",
      "test-express-key",
    ])
  })

  it("treats Bearer-only auth on the Gemini path as a proxy's native route, billed flat", async () => {
    const response = await fetch(`${state.sim.url}/v1beta/models/gemini-3-pro-image:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-proxy" },
      body: JSON.stringify({
        contents: [{ parts: [{ text: "x" }] }],
        generationConfig: { imageConfig: { aspectRatio: "16:9", imageSize: "4K" } },
      }),
    })
    expect(response.status).toBe(200)
    const ledger = state.sim.ledger()
    expect(ledger.calls[0]!.route).toBe("proxy-gemini")
    expect(ledger.billed[0]).toMatchObject({ usd: 0.05, tier: "flat", size: "4K" })
  })

  it("bills Pro at $120 per 1M image tokens (plus prompt and thoughts) and keeps keys out of the ledger", async () => {
    const client = gemini(state.sim.url)
    await client.models.generateContent({
      model: "gemini-3-pro-image",
      contents: "abcdefgh",
      config: imageRequest("1:1", "4K"),
    })
    await client.models.generateContent({
      model: "gemini-2.5-flash-image",
      contents: "abcdefgh",
      config: imageRequest(),
    })
    const ledger = state.sim.ledger()
    expect(ledger.totals.calls).toBe(2)
    expect(ledger.totals.billedImages).toBe(2)
    expect(ledger.billed[0]!.usd).toBeCloseTo((2 * 2 + 2000 * 120 + (6 + 96) * 12) / 1e6, 6)
    expect(ledger.billed[1]!.usd).toBeCloseTo((2 * 0.3 + 1290 * 30 + 6 * 2.5) / 1e6, 6)
    const served = await (await fetch(`${state.sim.url}/_simulator/ledger`)).text()
    expect(JSON.parse(served).totals).toEqual(ledger.totals)
    expect(served).not.toContain("test-key")
    await fetch(`${state.sim.url}/_simulator/reset`, { method: "POST" })
    expect(state.sim.ledger().totals).toEqual({ calls: 0, billedImages: 0, billedUsd: 0 })
  })
})
