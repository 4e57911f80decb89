import { ApiError } from "@google/genai"
import { Cause, Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { GeminiWire } from "../src/index.ts"

// A real 4×3 PNG.
const png = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC"
const request = { id: "r", prompt: "a fox", model: "gemini-3-pro-image", size: "4K", aspectRatio: "16:9" } as const

const answer = (parts: Array<unknown>, extra: Record<string, unknown> = {}) => ({
  candidates: [{ content: { role: "model", parts }, finishReason: "STOP", index: 0 }],
  ...extra,
})

describe("buildRequest", () => {
  it("sends both modalities, the aspect ratio and an uppercase imageSize for Gemini 3", () => {
    expect(GeminiWire.buildRequest(request)).toEqual({
      model: "gemini-3-pro-image",
      contents: [{ role: "user", parts: [{ text: "a fox" }] }],
      config: { responseModalities: ["TEXT", "IMAGE"], imageConfig: { aspectRatio: "16:9", imageSize: "4K" } },
    })
  })
  it("sends reference images as inlineData parts after the prompt, the seed, image-only and provider options", () => {
    const bytes = new Uint8Array(Buffer.from(png, "base64"))
    const built = GeminiWire.buildRequest(
      {
        ...request,
        images: [
          { bytes, mimeType: "image/png" },
          { bytes, mimeType: "image/png" },
        ],
        seed: 42,
        imageOnly: true,
      },
      "gemini-3-pro-image",
      {
        safetySettings: [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_ONLY_HIGH" }],
        temperature: 0.5,
      },
    )
    expect(built.contents).toEqual([
      {
        role: "user",
        parts: [
          { text: "a fox" },
          { inlineData: { mimeType: "image/png", data: png } },
          { inlineData: { mimeType: "image/png", data: png } },
        ],
      },
    ])
    expect(built.config).toMatchObject({
      responseModalities: ["IMAGE"],
      seed: 42,
      safetySettings: [{ category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_ONLY_HIGH" }],
      temperature: 0.5,
    })
  })
  it("reads a channel's provider options under its name, else its plugin's name", () => {
    const options = { safetySettings: [{ category: "HARM_CATEGORY_HATE_SPEECH", threshold: "BLOCK_NONE" }] }
    const asked = { ...request, providerOptions: { "google-ai-studio": options, other: { topP: 0.1 } } }
    expect(GeminiWire.optionsOf(asked, { name: "google", plugin: "google-ai-studio" })).toEqual(options)
    expect(GeminiWire.optionsOf(asked, { name: "other", plugin: "google-ai-studio" })).toEqual({ topP: 0.1 })
    expect(GeminiWire.optionsOf(request, { name: "google", plugin: "google-ai-studio" })).toEqual({})
  })
  it("leaves imageSize out for gemini-2.5-flash-image", () => {
    expect(GeminiWire.buildRequest({ ...request, model: "gemini-2.5-flash-image" }).config.imageConfig).toEqual({
      aspectRatio: "16:9",
    })
  })
})

describe("textOf", () => {
  it("returns the model's non-thought text, without inline images", () => {
    const response = answer([
      { text: "drafting", thought: true },
      { text: "Here is your image.", thoughtSignature: "x" },
      { inlineData: { mimeType: "image/png", data: png } },
    ])
    expect(GeminiWire.textOf(response)).toBe("Here is your image.")
    expect(GeminiWire.textOf(answer([{ text: `![image](data:image/png;base64,${png})` }]))).toBeUndefined()
    expect(GeminiWire.textOf(answer([{ inlineData: { mimeType: "image/png", data: png } }]))).toBeUndefined()
  })
})

describe("extractImage", () => {
  it("skips thought parts and takes the last non-thought image", () => {
    const result = GeminiWire.extractImage(
      "c",
      answer([
        { text: "drafting", thought: true },
        { inlineData: { mimeType: "image/png", data: "bm90IGFuIGltYWdl" }, thought: true },
        { text: "Here is your image.", thoughtSignature: "x" },
        { inlineData: { mimeType: "image/png", data: png }, thoughtSignature: "x" },
      ]),
    )
    expect(result._tag).toBe("Image")
    expect(result._tag === "Image" && result.bytes.length).toBeGreaterThan(50)
  })
  it("accepts snake_case inline_data and trusts the bytes over the declared mimeType", () => {
    const result = GeminiWire.extractImage("c", answer([{ inline_data: { mime_type: "image/jpeg", data: png } }]))
    expect(result._tag === "Image" && result.mimeType).toBe("image/png")
  })
  it("accepts a markdown data-URI inside a text part (proxies), and reports a URL", () => {
    expect(
      GeminiWire.extractImage("c", answer([{ text: `Done!\n\n![image](data:image/png;base64,${png})` }]))._tag,
    ).toBe("Image")
    expect(GeminiWire.extractImage("c", answer([{ text: "![image](https://cdn.example.com/x.png)" }]))).toEqual({
      _tag: "Url",
      url: "https://cdn.example.com/x.png",
    })
  })

  const errorOf = (value: unknown) => {
    const result = GeminiWire.extractImage("c", value)
    if (result._tag !== "Error") throw new Error(`expected an error, got ${result._tag}`)
    return result.error
  }

  for (const reason of [
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "IMAGE_PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_RECITATION",
    "LANGUAGE",
  ]) {
    it(`finishReason ${reason} → ContentBlocked (not retryable)`, () => {
      const error = errorOf({ candidates: [{ content: { parts: [] }, finishReason: reason }] })
      expect(error._tag).toBe("ContentBlocked")
      expect(error.retryable).toBe(false)
      expect(error._tag === "ContentBlocked" && error.reason).toBe(reason)
    })
  }
  for (const reason of [
    "NO_IMAGE",
    "MAX_TOKENS",
    "IMAGE_OTHER",
    "OTHER",
    "STOP",
    "FINISH_REASON_UNSPECIFIED",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
    "MISSING_THOUGHT_SIGNATURE",
    "MALFORMED_FUNCTION_CALL",
  ]) {
    it(`finishReason ${reason} without an image → NoImage`, () => {
      const error = errorOf({ candidates: [{ content: { parts: [{ text: "no picture" }] }, finishReason: reason }] })
      expect(error._tag).toBe("NoImage")
      expect(error._tag === "NoImage" && error.finishReason).toBe(reason)
    })
  }
  it("finishReason MALFORMED_RESPONSE → MalformedResponse", () => {
    expect(errorOf({ candidates: [{ content: { parts: [] }, finishReason: "MALFORMED_RESPONSE" }] })._tag).toBe(
      "MalformedResponse",
    )
  })
  for (const blockReason of [
    "SAFETY",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "IMAGE_SAFETY",
    "MODEL_ARMOR",
    "JAILBREAK",
    "BLOCKED_REASON_UNSPECIFIED",
  ]) {
    it(`promptFeedback.blockReason ${blockReason} with no candidates → ContentBlocked`, () => {
      const error = errorOf({ promptFeedback: { blockReason, blockReasonMessage: "no" } })
      expect(error._tag).toBe("ContentBlocked")
    })
  }
  it("no candidates and no block reason → NoImage; a proxy's null safetyRatings are tolerated", () => {
    expect(errorOf({ candidates: [], promptFeedback: { safetyRatings: null } })._tag).toBe("NoImage")
    expect(errorOf({})._tag).toBe("NoImage")
  })
  it("text that is not base64 → MalformedResponse; a non-object → MalformedResponse", () => {
    // Whether decoded bytes are a whole image is core's single check (Stages.callChannel), not the wire's.
    expect(
      GeminiWire.extractImage("c", answer([{ inlineData: { mimeType: "image/png", data: png.slice(0, 40) } }]))._tag,
    ).toBe("Image")
    expect(errorOf(answer([{ inlineData: { mimeType: "image/png", data: "!!!not base64!!!" } }]))._tag).toBe(
      "MalformedResponse",
    )
    expect(errorOf("<html>")._tag).toBe("MalformedResponse")
  })
  it("an error object inside a 200 body is classified by its code", () => {
    expect(errorOf({ error: { code: 503, message: "overloaded", status: "UNAVAILABLE" } })._tag).toBe("Unavailable")
  })
})

describe("usageOf", () => {
  it("splits image, text and thought tokens", () => {
    expect(
      GeminiWire.usageOf({
        usageMetadata: {
          promptTokenCount: 14,
          candidatesTokenCount: 1223,
          thoughtsTokenCount: 106,
          candidatesTokensDetails: [{ modality: "IMAGE", tokenCount: 1120 }],
        },
      }),
    ).toEqual({ inputTokens: 14, outputImageTokens: 1120, outputTextTokens: 103, thoughtTokens: 106 })
  })
  it("tolerates proxies that leave out candidatesTokensDetails", () => {
    expect(GeminiWire.usageOf({ usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 1290 } })).toEqual({
      inputTokens: 5,
      outputImageTokens: 1290,
      outputTextTokens: 0,
    })
    expect(GeminiWire.usageOf({})).toBeUndefined()
  })
})

describe("toChannelImage", () => {
  it("reports usage for core to price, and the flat price when configured; a billed answer without an image keeps its usage", async () => {
    const response = answer([{ inlineData: { mimeType: "image/png", data: png } }], {
      usageMetadata: {
        promptTokenCount: 0,
        candidatesTokenCount: 2000,
        candidatesTokensDetails: [{ modality: "IMAGE", tokenCount: 2000 }],
      },
    })
    const priced = await Effect.runPromise(GeminiWire.toChannelImage("c", request, response, undefined))
    expect(priced.costUsd).toBeUndefined()
    expect(priced.usage).toEqual({ inputTokens: 0, outputImageTokens: 2000, outputTextTokens: 0 })
    const flat = await Effect.runPromise(GeminiWire.toChannelImage("c", request, response, 0.05))
    expect(flat.costUsd).toBe(0.05)
    const exit = await Effect.runPromiseExit(
      GeminiWire.toChannelImage(
        "c",
        request,
        answer([{ text: "none" }], { usageMetadata: { promptTokenCount: 7 } }),
        0.05,
      ),
    )
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) {
      const error = Cause.findErrorOption(exit.cause)
      expect(error._tag === "Some" && error.value.usage).toEqual({ inputTokens: 7 })
      expect(error._tag === "Some" && error.value.costUsd).toBe(0.05)
    }
  })
})

describe("classifying Google's errors", () => {
  const body = (code: number, status: string, details: Array<unknown> = [], message = "m") =>
    JSON.stringify({ error: { code, message, status, details } })
  const thrown = (status: number, text: string) => new ApiError({ message: text, status })

  it("429 with RetryInfo → RateLimited with retryAfterMs, retryable", () => {
    const error = GeminiWire.classifyThrown(
      "g",
      thrown(
        429,
        body(429, "RESOURCE_EXHAUSTED", [
          {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            violations: [{ quotaId: "GenerateRequestsPerMinutePerProjectPerModel" }],
          },
          { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "34s" },
        ]),
      ),
    )
    expect(error).toMatchObject({ _tag: "RateLimited", retryAfterMs: 34_000, status: 429, channel: "g" })
    expect(error.retryable).toBe(true)
  })
  it("a per-day quota → RateLimited daily, not retryable; absurd delays are ignored", () => {
    const error = GeminiWire.classifyThrown(
      "g",
      thrown(
        429,
        body(429, "RESOURCE_EXHAUSTED", [
          {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            violations: [{ quotaId: "GenerateRequestsPerDayPerProjectPerModel" }],
          },
          { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "86400s" },
        ]),
      ),
    )
    expect(error).toMatchObject({ _tag: "RateLimited", daily: true })
    expect((error as { retryAfterMs?: number }).retryAfterMs).toBeUndefined()
    expect(error.retryable).toBe(false)
    expect(GeminiWire.parseRetryDelay("1.5s")).toBe(1500)
  })
  it.each([
    [400, "INVALID_ARGUMENT", [], "Rejected"],
    [
      400,
      "INVALID_ARGUMENT",
      [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID" }],
      "Unauthorized",
    ],
    [400, "FAILED_PRECONDITION", [], "Unauthorized"],
    [401, "UNAUTHENTICATED", [], "Unauthorized"],
    [403, "PERMISSION_DENIED", [], "Unauthorized"],
    [404, "NOT_FOUND", [], "Rejected"],
    [500, "INTERNAL", [], "Unavailable"],
    [502, "UNAVAILABLE", [], "Unavailable"],
    [503, "UNAVAILABLE", [], "Unavailable"],
    [504, "DEADLINE_EXCEEDED", [], "Unavailable"],
  ])("%i %s → %s", (status, googleStatus, details, tag) => {
    expect(
      GeminiWire.classifyThrown(
        "g",
        thrown(status as number, body(status as number, googleStatus as string, details as Array<unknown>)),
      )._tag,
    ).toBe(tag)
  })
  it("a non-JSON error page, a timeout abort, a refused connection and garbage", () => {
    expect(
      GeminiWire.classifyThrown(
        "g",
        thrown(
          502,
          JSON.stringify({ error: { message: "<html>Bad Gateway</html>", code: 502, status: "Bad Gateway" } }),
        ),
      )._tag,
    ).toBe("Unavailable")
    expect(
      GeminiWire.classifyThrown("g", Object.assign(new Error("This operation was aborted"), { name: "AbortError" }))
        ._tag,
    ).toBe("Timeout")
    expect(
      GeminiWire.classifyThrown("g", Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } }))
        ._tag,
    ).toBe("Unavailable")
    expect(GeminiWire.classifyThrown("g", new SyntaxError("Unexpected end of JSON input"))._tag).toBe(
      "MalformedResponse",
    )
  })
  it("never puts the key or a whole base64 body into the message", () => {
    const key = "AIzaSy-SECRET-KEY-123"
    const error = GeminiWire.classifyThrown(
      "g",
      thrown(400, body(400, "INVALID_ARGUMENT", [], `bad key ${key} ${"A".repeat(5000)}`)),
      [key],
    )
    expect(error.message).not.toContain(key)
    expect(error.message.length).toBeLessThan(400)
  })
})
