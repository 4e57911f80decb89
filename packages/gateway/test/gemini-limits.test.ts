/**
 * The rest of the Gemini wire's errors through `@google/genai`: the pipeline's own budget (429
 * RESOURCE_EXHAUSTED, Retry-After, nothing spent), a 50 MB inline image (413 before it is read), an error
 * on the streaming route (the SDK's ApiError, not a broken stream); and a fallback placeholder answered as
 * an image marked `x-peel-placeholder: true`.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ApiError, GoogleGenAI } from "@google/genai"
import { imageSize } from "image-size"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Harness, pipelineFile, startGateway } from "./harness.ts"

/** The test pipeline with `stages` lines added at the top of its stage list. */
const pipelineWith = (name: string, stages: string): string => {
  const file = join(mkdtempSync(join(tmpdir(), `peel-gemini-${name}-`)), "gateway.yaml")
  writeFileSync(file, readFileSync(pipelineFile, "utf8").replace("stages:\n", `stages:\n${stages}`))
  return file
}

const caught = async (promise: Promise<unknown>): Promise<ApiError> => {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  )
  expect(error).toBeInstanceOf(ApiError)
  return error as ApiError
}

describe("with a pipeline budget smaller than one image", () => {
  let h: Harness
  beforeAll(async () => {
    h = await startGateway({ pipeline: pipelineWith("budget", "  - budget: { limit: 0.01, window: 1d }\n") })
  })
  afterAll(async () => {
    await h?.close()
  })
  const ai = () => new GoogleGenAI({ apiKey: "k", httpOptions: { baseUrl: h.url } })

  it("429 RESOURCE_EXHAUSTED with Retry-After and PIPELINE_BUDGET_EXHAUSTED, nothing spent", async () => {
    const error = await caught(ai().models.generateContent({ model: "gemini-3-pro-image", contents: "a red fox" }))
    expect(error.status).toBe(429)
    const body = JSON.parse(error.message) as { error: { status: string; details: Array<Record<string, string>> } }
    expect(body.error.status).toBe("RESOURCE_EXHAUSTED")
    expect(body.error.details).toContainEqual(expect.objectContaining({ reason: "PIPELINE_BUDGET_EXHAUSTED" }))
    expect(body.error.details).toContainEqual({
      "@type": "type.googleapis.com/google.rpc.RetryInfo",
      retryDelay: "60s",
    })
    expect(h.sim.ledger().totals.calls).toBe(0)
  })

  it("an error on :streamGenerateContent is the SDK's ApiError too", async () => {
    const error = await caught(
      (async () => {
        for await (const _ of await ai().models.generateContentStream({
          model: "gemini-3-pro-image",
          contents: "a red fox",
        }));
      })(),
    )
    expect(error.status).toBe(429)
  })

  it("413 for a 50 MB inline image sent by the SDK", async () => {
    const error = await caught(
      ai().models.generateContent({
        model: "gemini-3-pro-image",
        contents: [
          {
            role: "user",
            parts: [
              { text: "edit this" },
              { inlineData: { mimeType: "image/png", data: "A".repeat(50 * 1024 * 1024) } },
            ],
          },
        ],
      }),
    )
    expect(error.status).toBe(413)
    expect(h.sim.ledger().totals.calls).toBe(0)
  })
})

describe("with a fallback placeholder and every upstream failing", () => {
  let h: Harness
  beforeAll(async () => {
    h = await startGateway({
      pipeline: pipelineWith("placeholder", "  - fallback: [{ placeholder: generated }]\n"),
      simulator: { faults: "503=1" },
    })
  })
  afterAll(async () => {
    await h?.close()
  })

  it("answers the placeholder at the asked size, marked x-peel-placeholder: true", async () => {
    const response = await new GoogleGenAI({ apiKey: "k", httpOptions: { baseUrl: h.url } }).models.generateContent({
      model: "gemini-3-pro-image",
      contents: "a lighthouse",
      config: { imageConfig: { aspectRatio: "16:9", imageSize: "2K" } },
    })
    const { width, height } = imageSize(Buffer.from(response.data!, "base64"))
    expect({ width, height }).toEqual({ width: 2752, height: 1536 })
    expect(response.sdkHttpResponse?.headers?.["x-peel-placeholder"]).toBe("true")
    expect(h.sim.ledger().totals.billedImages).toBe(0)
  })
})
