import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Result, Schema } from "effect"
import { APIConnectionError, APIConnectionTimeoutError, APIError } from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { OpenAiWire } from "../src/index.ts"

const png = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC"
const request = { id: "r", prompt: "a fox", model: "gemini-3-pro-image", size: "2K", aspectRatio: "16:9" } as const

const completion = (message: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", ...message } }],
  ...extra,
})

const errorOf = (value: unknown) => {
  const result = OpenAiWire.extractImage("c", value)
  if (result._tag !== "Error") throw new Error(`expected an error, got ${result._tag}`)
  return result.error
}

describe("buildRequest", () => {
  it("sends modalities, and image_config only when the upstream honours it", () => {
    expect(OpenAiWire.buildRequest(request, { model: "google/gemini-3-pro-image", imageConfig: true })).toEqual({
      model: "google/gemini-3-pro-image",
      messages: [{ role: "user", content: "a fox" }],
      modalities: ["image", "text"],
      image_config: { aspect_ratio: "16:9", image_size: "2K" },
      stream: false,
    })
    expect(OpenAiWire.buildRequest(request, { model: "m", imageConfig: false }).image_config).toBeUndefined()
  })
  it("sends reference images as image_url data-URI parts after the prompt, the seed, image-only and extra fields", () => {
    const bytes = new Uint8Array([1, 2, 3])
    const body = OpenAiWire.buildRequest(
      { ...request, images: [{ bytes, mimeType: "image/webp" }], seed: 4, imageOnly: true },
      { model: "m", imageConfig: false, extra: { provider: { order: ["x"] } } },
    )
    expect(body).toEqual({
      provider: { order: ["x"] },
      model: "m",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "a fox" },
            { type: "image_url", image_url: { url: "data:image/webp;base64,AQID" } },
          ],
        },
      ],
      modalities: ["image"],
      seed: 4,
      stream: false,
    })
  })
  it("names Nano Banana 2's 512 size 0.5K for OpenRouter", () => {
    expect(OpenAiWire.imageSizeOf("512")).toBe("0.5K")
    expect(OpenAiWire.imageSizeOf("2K")).toBe("2K")
  })
  it("refuses provider options that would override what Peel sets", () => {
    const decode = Schema.decodeUnknownResult(OpenAiWire.ExtraBody)
    expect(Result.isSuccess(decode({ user: "me", transforms: [] }))).toBe(true)
    expect(Result.isFailure(decode({ model: "other", seed: 1 }))).toBe(true)
  })
})

describe("textOf", () => {
  it("returns the text beside the image, without inline images or links", () => {
    const answer = (content: unknown) => ({ choices: [{ message: { content } }] })
    expect(OpenAiWire.textOf(answer("Here it is.\n\n![image](data:image/png;base64,AAAA)"))).toBe("Here it is.")
    expect(OpenAiWire.textOf(answer("![image](https://example.com/x.png)"))).toBeUndefined()
    expect(OpenAiWire.textOf(answer([{ type: "text", text: "A fox." }]))).toBe("A fox.")
    expect(OpenAiWire.textOf({})).toBeUndefined()
  })
})

describe("extractImage", () => {
  it("reads message.images first", () => {
    expect(
      OpenAiWire.extractImage(
        "c",
        completion({
          content: "here",
          images: [{ type: "image_url", image_url: { url: `data:image/png;base64,${png}` } }],
        }),
      )._tag,
    ).toBe("Image")
  })
  it("reads a markdown data-URI, a bare data-URI, content parts, and reports an https URL", () => {
    expect(
      OpenAiWire.extractImage("c", completion({ content: `\n\n![image](data:image/png;base64,${png})` }))._tag,
    ).toBe("Image")
    expect(OpenAiWire.extractImage("c", completion({ content: `data:image/png;base64,${png}` }))._tag).toBe("Image")
    expect(
      OpenAiWire.extractImage(
        "c",
        completion({ content: [{ type: "text", text: `![x](data:image/png;base64,${png})` }] }),
      )._tag,
    ).toBe("Image")
    expect(OpenAiWire.extractImage("c", completion({ content: "See https://cdn.example.com/a.png" }))).toEqual({
      _tag: "Url",
      url: "https://cdn.example.com/a.png",
    })
  })
  it("text only → NoImage; content_filter → ContentBlocked; finish_reason error → Unavailable", () => {
    expect(errorOf(completion({ content: "I cannot draw" }))._tag).toBe("NoImage")
    expect(
      errorOf({
        choices: [{ finish_reason: "content_filter", native_finish_reason: "IMAGE_SAFETY", message: { content: "" } }],
      }),
    ).toMatchObject({ _tag: "ContentBlocked", reason: "IMAGE_SAFETY" })
    expect(errorOf({ choices: [{ finish_reason: "error", message: { content: "" } }] })._tag).toBe("Unavailable")
    expect(errorOf({ choices: [] })._tag).toBe("NoImage")
  })
  it("an error inside a 200 body is classified by its code", () => {
    expect(errorOf({ error: { code: 502, message: "Provider returned error" } })._tag).toBe("Unavailable")
    expect(errorOf({ error: { code: 402, message: "credits" } })._tag).toBe("InsufficientCredits")
    expect(errorOf({ error: { code: 429, message: "slow down" } })._tag).toBe("RateLimited")
  })
  it("text that is not base64 → MalformedResponse (whether bytes are a whole image is core's check)", () => {
    expect(errorOf(completion({ content: "![image](data:image/png;base64,AAAAA)" }))._tag).toBe("MalformedResponse")
  })
})

describe("usage and cost", () => {
  it("maps usage and takes OpenRouter's usage.cost", () => {
    const value = {
      usage: {
        prompt_tokens: 10,
        completion_tokens: 1130,
        cost: 0.1356,
        completion_tokens_details: { image_tokens: 1120, reasoning_tokens: 0 },
      },
    }
    expect(OpenAiWire.usageOf(value)).toEqual({ inputTokens: 10, outputImageTokens: 1120, outputTextTokens: 10 })
    expect(OpenAiWire.costOf(value)).toBe(0.1356)
    expect(OpenAiWire.costOf({ usage: {} })).toBeUndefined()
  })
})

describe("classifying the openai SDK's errors", () => {
  const apiError = (status: number, message: string, headers: Record<string, string> = {}) =>
    APIError.generate(status, { error: { code: status, message } }, undefined, new Headers(headers))

  it.each([
    [400, "Rejected"],
    [401, "Unauthorized"],
    [402, "InsufficientCredits"],
    [403, "Unauthorized"],
    [408, "Timeout"],
    [429, "RateLimited"],
    [500, "Unavailable"],
    [502, "Unavailable"],
    [503, "Unavailable"],
    [504, "Unavailable"],
  ])("%i → %s", (status, tag) => {
    expect(OpenAiWire.classifyThrown("o", apiError(status, "nope"))._tag).toBe(tag)
  })
  it("reads Retry-After (seconds or date) and retry-after-ms; ignores absurd values", () => {
    expect(OpenAiWire.classifyThrown("o", apiError(429, "x", { "retry-after": "2" }))).toMatchObject({
      retryAfterMs: 2000,
    })
    expect(OpenAiWire.classifyThrown("o", apiError(429, "x", { "retry-after-ms": "1500" }))).toMatchObject({
      retryAfterMs: 1500,
    })
    expect(
      (OpenAiWire.classifyThrown("o", apiError(429, "x", { "retry-after": "99999" })) as { retryAfterMs?: number })
        .retryAfterMs,
    ).toBeUndefined()
  })
  it("403 moderation → ContentBlocked; connection errors; timeouts; parse errors", () => {
    expect(OpenAiWire.classifyThrown("o", apiError(403, "Your input was flagged by moderation"))._tag).toBe(
      "ContentBlocked",
    )
    expect(OpenAiWire.classifyThrown("o", new APIConnectionError({ message: "Connection error." }))._tag).toBe(
      "Unavailable",
    )
    expect(OpenAiWire.classifyThrown("o", new APIConnectionTimeoutError())._tag).toBe("Timeout")
    expect(OpenAiWire.classifyThrown("o", new SyntaxError("Unexpected end of JSON input"))._tag).toBe(
      "MalformedResponse",
    )
  })
  it("keeps the key out of messages", () => {
    const error = OpenAiWire.classifyThrown("o", apiError(401, "bad key sk-SECRET-1"), ["sk-SECRET-1"])
    expect(error.message).not.toContain("sk-SECRET-1")
  })
})

describe("download", () => {
  let url = ""
  const server = createServer((request, response) => {
    if (request.url === "/big") {
      response.writeHead(200, { "content-type": "image/png" })
      response.end(Buffer.alloc(4096))
      return
    }
    if (request.url === "/text") {
      response.writeHead(200, { "content-type": "text/plain" })
      response.end("hello, not an image at all, sorry")
      return
    }
    response.writeHead(200, { "content-type": "image/png" })
    response.end(Buffer.from(png, "base64"))
  })
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const limits = { maxBytes: 1024, timeoutMillis: 5000, allowPrivate: true }

  it("fetches an image when private addresses are allowed", async () => {
    const result = await Effect.runPromise(OpenAiWire.download("c", `${url}/image.png`, limits))
    expect(result._tag === "Image" && result.mimeType).toBe("image/png")
  })
  it("refuses loopback and private addresses by default, before connecting", async () => {
    const result = await Effect.runPromise(
      OpenAiWire.download("c", `${url}/image.png`, { ...limits, allowPrivate: false }),
    )
    expect(result._tag === "Error" && result.error.message).toMatch(/private address/)
    for (const address of ["10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254", "::1", "fd00::1"])
      expect(OpenAiWire.isPrivateAddress(address)).toBe(true)
    expect(OpenAiWire.isPrivateAddress("8.8.8.8")).toBe(false)
  })
  it("enforces the size limit and checks the bytes are an image", async () => {
    const big = await Effect.runPromise(OpenAiWire.download("c", `${url}/big`, limits))
    expect(big._tag === "Error" && big.error.message).toMatch(/limit/)
    const text = await Effect.runPromise(OpenAiWire.download("c", `${url}/text`, limits))
    expect(text._tag === "Error" && text.error._tag).toBe("MalformedResponse")
  })
})
