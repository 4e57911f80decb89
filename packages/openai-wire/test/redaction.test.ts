/**
 * The key never comes out of the OpenAI wire's error paths: every classifier entry point (`classifyThrown`
 * for each kind of SDK error, `errorInBody` and `extractImage` for an error inside a 200 answer, and the
 * ChatClient end to end against a server that echoes the Bearer token) is fed text that echoes the key.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { inspect } from "node:util"
import { Cause, Effect, Exit, Redacted } from "effect"
import { APIConnectionError, APIError } from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ChatClient, OpenAiWire } from "../src/index.ts"

const key = "sk-or-v1-ECHOED-0123456789abcdef"

const expectNoKey = (error: unknown) => {
  for (const text of [
    String((error as { message?: unknown }).message),
    String(error),
    JSON.stringify(error),
    inspect(error, { depth: 8 }),
  ])
    expect(text).not.toContain(key)
}

describe("OpenAiWire error paths never show the key", () => {
  it.each([400, 401, 402, 403, 408, 429, 500, 502, 503])("classifyThrown: an APIError %i echoing the key", (status) => {
    const thrown = APIError.generate(
      status,
      { error: { code: status, message: `Invalid API key: ${key}`, metadata: { key } } },
      undefined,
      new Headers(),
    )
    const error = OpenAiWire.classifyThrown("o", thrown, [key])
    expectNoKey(error)
    expect(error.message).toContain("<redacted>")
  })

  it("classifyThrown: a connection error, a JSON failure, an HTML page and anything else", () => {
    const thrown = [
      new APIConnectionError({ message: `Connection error to https://proxy/?key=${key}` }),
      new SyntaxError(`Unexpected token in JSON: {"key":"${key}"`),
      APIError.generate(502, undefined, `<html>bad gateway ${key}</html>`, new Headers()),
      new Error(`odd: Bearer ${key}`),
      `a thrown string ${key}`,
    ]
    for (const each of thrown) expectNoKey(OpenAiWire.classifyThrown("o", each, [key]))
  })

  it("errorInBody and extractImage: an OpenAI-shaped error inside an HTTP 200", () => {
    const body = { id: "gen-1", error: { code: 401, message: `Invalid API key: ${key}` }, choices: [] }
    const inBody = OpenAiWire.errorInBody("o", body, [key])
    expect(inBody?._tag).toBe("Unauthorized")
    expectNoKey(inBody)
    const extracted = OpenAiWire.extractImage("o", body, [key])
    expect(extracted._tag).toBe("Error")
    if (extracted._tag === "Error") expectNoKey(extracted.error)
  })

  it("extractImage: finish reasons that echo the key", () => {
    for (const choice of [
      { finish_reason: "content_filter", native_finish_reason: `BLOCKED ${key}`, message: { content: "" } },
      { finish_reason: `odd-${key}`, message: { content: "no image" } },
    ]) {
      const extracted = OpenAiWire.extractImage("o", { choices: [choice] }, [key])
      expect(extracted._tag).toBe("Error")
      if (extracted._tag === "Error") expectNoKey(extracted.error)
    }
  })

  it("a key too short to tell apart from words is not cut out of them", () => {
    const thrown = APIError.generate(429, { error: { message: "Resource exhausted" } }, undefined, new Headers())
    expect(OpenAiWire.classifyThrown("o", thrown, ["x"]).message).toContain("Resource exhausted")
  })
})

describe("ChatClient against a server that echoes the Bearer token", () => {
  let server: Server
  let url = ""
  let mode: "error-status" | "error-in-200" = "error-status"
  beforeAll(async () => {
    server = createServer((request, response) => {
      const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1] ?? ""
      request.resume()
      request.on("end", () => {
        const error = { code: 401, message: `Invalid API key: ${token}`, metadata: { key: token } }
        response.writeHead(mode === "error-status" ? 401 : 200, { "content-type": "application/json" })
        response.end(JSON.stringify(mode === "error-status" ? { error } : { id: "gen-1", error, choices: [] }))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it.each(["error-status", "error-in-200"] as const)("%s: fails Unauthorized without the key", async (which) => {
    mode = which
    const client = ChatClient.make({ channel: "o", apiKey: Redacted.make(key), baseUrl: url })
    const exit = await Effect.runPromiseExit(
      client.complete({ model: "m", messages: [{ role: "user", content: "p" }] }),
    )
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) {
      const error = Cause.squash(exit.cause)
      expect((error as { _tag?: string })._tag).toBe("Unauthorized")
      expectNoKey(error)
      expect(Cause.pretty(exit.cause)).not.toContain(key)
    }
  })
})
