/**
 * The key never comes out of the Gemini wire's error paths: every classifier entry point is fed a body that
 * echoes the channel's key (in the message, the status, a non-JSON page, a thrown SDK error, a network
 * error, an error inside a 200 answer, a block reason) and nothing it returns may show it.
 */
import { inspect } from "node:util"
import { ApiError } from "@google/genai"
import { Cause, Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { GeminiWire } from "../src/index.ts"

const key = "AIzaSyECHOED-key-0123456789abcdef"

const googleError = (code: number, status: string, message: string, details: Array<unknown> = []) =>
  JSON.stringify({ error: { code, message, status, details } })

/** Every way an error can be shown: none may contain the key. */
const expectNoKey = (error: unknown) => {
  for (const text of [
    String((error as { message?: unknown }).message),
    String(error),
    JSON.stringify(error),
    inspect(error, { depth: 8 }),
  ])
    expect(text).not.toContain(key)
}

const echoes = [
  [
    "400 API_KEY_INVALID",
    400,
    googleError(400, "INVALID_ARGUMENT", `API key not valid: ${key}`, [{ reason: "API_KEY_INVALID" }]),
  ],
  ["403 with the key in the status", 403, googleError(403, `PERMISSION_DENIED ${key}`, `caller ${key} denied`)],
  ["429", 429, googleError(429, "RESOURCE_EXHAUSTED", `quota for key=${key} exhausted`)],
  ["503", 503, googleError(503, "UNAVAILABLE", `overloaded (key ${key})`)],
  ["a non-JSON error page", 502, `<html><body>bad gateway for ?key=${key}</body></html>`],
  ["plain text", 400, `invalid key ${key}`],
] as const

describe("GeminiWire error paths never show the key", () => {
  it.each(echoes)("classifyHttpError: %s", (_name, status, body) => {
    const error = GeminiWire.classifyHttpError("c", status, body, [key])
    expectNoKey(error)
    expect(error.message).toContain("<redacted>")
  })

  it.each(echoes)("classifyThrown, the SDK's ApiError: %s", (_name, status, body) => {
    expectNoKey(GeminiWire.classifyThrown("c", new ApiError({ message: body, status }), [key]))
  })

  it("classifyThrown: a network failure, a JSON failure and anything else", () => {
    const network = Object.assign(new TypeError(`fetch failed for ?key=${key}`), { cause: { code: "ECONNRESET" } })
    const json = new SyntaxError(`Unexpected token in JSON at position 3: {"key":"${key}"`)
    const other = new Error(`something odd happened with ${key}`)
    for (const thrown of [network, json, other, `a thrown string with ${key}`])
      expectNoKey(GeminiWire.classifyThrown("c", thrown, [key]))
  })

  it("errorInBody and extractImage: an error inside a 200 answer", () => {
    const body = JSON.parse(googleError(401, `UNAUTHENTICATED ${key}`, `bad credential ${key}`))
    const inBody = GeminiWire.errorInBody("c", body, [key])
    expect(inBody?._tag).toBe("Unauthorized")
    expectNoKey(inBody)
    const extracted = GeminiWire.extractImage("c", body, [key])
    expect(extracted._tag).toBe("Error")
    if (extracted._tag === "Error") expectNoKey(extracted.error)
  })

  it("extractImage: a block reason, a finish message and a finish reason that echo the key", () => {
    const answers = [
      { promptFeedback: { blockReason: `BLOCKED_FOR_${key}` } },
      { candidates: [{ content: { parts: [] }, finishReason: "IMAGE_SAFETY", finishMessage: `blocked ${key}` }] },
      { candidates: [{ content: { parts: [{ text: "no" }] }, finishReason: `ODD_${key}` }] },
    ]
    for (const answer of answers) {
      const extracted = GeminiWire.extractImage("c", answer, [key])
      expect(extracted._tag).toBe("Error")
      if (extracted._tag === "Error") expectNoKey(extracted.error)
    }
  })

  it("makeClient: an error inside a 200 answer fails the call through the channel's classifier", async () => {
    const sdk = {
      models: {
        generateContent: async () => ({
          error: { code: 400, message: `API key not valid: ${key}`, status: "INVALID_ARGUMENT" },
        }),
      },
    }
    const client = GeminiWire.makeClient(sdk, (thrown) => GeminiWire.classifyThrown("c", thrown, [key]))
    const exit = await Effect.runPromiseExit(
      client.generateContent(
        GeminiWire.buildRequest({
          id: "r",
          prompt: "p",
          model: "gemini-3-pro-image",
          size: "1K",
          aspectRatio: "1:1",
        }),
      ),
    )
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) {
      expect(Cause.pretty(exit.cause)).not.toContain(key)
      expectNoKey(Cause.squash(exit.cause))
      expect((Cause.squash(exit.cause) as { _tag?: string })._tag).toBe("Rejected")
    }
  })

  it("a key too short to tell apart from words is not cut out of them", () => {
    const error = GeminiWire.classifyHttpError(
      "c",
      429,
      googleError(429, "RESOURCE_EXHAUSTED", "Resource exhausted."),
      ["x"],
    )
    expect(error.message).toContain("Resource exhausted.")
    expect(error.message).toContain("RESOURCE_EXHAUSTED")
  })
})
