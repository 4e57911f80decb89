import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { gzipSync } from "node:zlib"
import { GoogleGenAI } from "@google/genai"
import { Image } from "@peel/contract"
import { Effect, Exit, Fiber } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { GeminiWire, Transport } from "../src/index.ts"

/** A real PNG, grown with a private chunk so its base64 is well over the 4 KB lifting threshold. */
const pngBytes = (() => {
  const small = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC",
    "base64",
  )
  const filler = Buffer.alloc(300_000, 7)
  const chunk = Buffer.alloc(12 + filler.length)
  chunk.writeUInt32BE(filler.length, 0)
  chunk.write("prVt", 4, "latin1")
  filler.copy(chunk, 8)
  // IHDR ends at byte 33: the private chunk goes between it and the image data (its CRC is not checked).
  return Buffer.concat([small.subarray(0, 33), chunk, small.subarray(33)])
})()
const pngBase64 = pngBytes.toString("base64")

type Handler = (request: IncomingMessage, response: ServerResponse, body: string) => void
let handler: Handler = () => {}
let server: Server
let baseUrl = ""
const seen: Array<{ url: string; headers: IncomingMessage["headers"]; body: string }> = []

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      seen.push({ url: request.url ?? "", headers: request.headers, body })
      handler(request, response, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

/** An answer body written in many small pieces, so values straddle the chunks the client reads. */
const writeInPieces = (response: ServerResponse, text: string, piece = 1000) => {
  response.writeHead(200, { "content-type": "application/json" })
  let at = 0
  const next = () => {
    if (at >= text.length) return response.end()
    response.write(text.slice(at, at + piece))
    at += piece
    setImmediate(next)
  }
  next()
}

const imageAnswer = (data: string, spacing = "") =>
  `{"candidates":[{"content":{"role":"model","parts":[{"text":"here"},{"inlineData":{"mimeType":"image/png",${spacing}"data"${spacing}:${spacing}"${data}"}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":1120},"modelVersion":"gemini-3-pro-image"}`

const call = (transport: Transport.Transport) => {
  const sdk = new GoogleGenAI({ apiKey: "test-key", httpOptions: { baseUrl, fetch: transport.fetch } })
  const client = GeminiWire.makeClient(sdk, (thrown) => GeminiWire.classifyThrown("c", thrown, ["test-key"]), transport)
  return Effect.runPromiseExit(
    client.generateContent({
      model: "gemini-3-pro-image",
      contents: [{ role: "user", parts: [{ text: "a fox" }] }],
      config: { responseModalities: ["TEXT", "IMAGE"], imageConfig: { aspectRatio: "1:1", imageSize: "1K" } },
    }),
  )
}

describe("Segments and lift", () => {
  it("lifts a data value that straddles chunks, and a key split across two chunks, leaving the rest as JSON", () => {
    const text = `{"a":{"data":"${"QUJD".repeat(2000)}"},"b":{"dat`
    const rest = `a" : "${"REVG".repeat(1500)}"},"c":{"data":"short"}}`
    const whole = Buffer.from(text + rest)
    // Cut into pieces of 7 bytes, then the two halves as given (the key "data" is split between them).
    const pieces: Array<Buffer> = []
    for (let at = 0; at < text.length; at += 7) pieces.push(whole.subarray(at, Math.min(text.length, at + 7)))
    pieces.push(whole.subarray(text.length))
    const lifted = new Transport.Lifted()
    const left = Transport.lift(new Transport.Segments(pieces), lifted)
    expect(JSON.parse(left.toString("utf8"))).toEqual({
      a: { data: "peel-lifted:0" },
      b: { data: "peel-lifted:1" },
      c: { data: "short" },
    })
    expect(lifted.texts.map((views) => Buffer.concat(views).toString("latin1"))).toEqual([
      "QUJD".repeat(2000),
      "REVG".repeat(1500),
    ])
    // The lifted text is views of the chunks, not copies.
    expect(lifted.texts[0]!.every((view) => pieces.some((piece) => piece.buffer === view.buffer))).toBe(true)
  })

  it("leaves a value with an escape, a short value and a data value that is not a string where they are", () => {
    const body = `{"x":{"data":"${"A".repeat(5000)}\\/${"B".repeat(10)}"},"y":{"data":"abc"},"z":{"data":12}}`
    const lifted = new Transport.Lifted()
    const left = Transport.lift(new Transport.Segments([Buffer.from(body)]), lifted)
    expect(left.toString("utf8")).toBe(body)
    expect(lifted.texts).toEqual([])
  })
})

describe("Transport under @google/genai", () => {
  it("gives the SDK the answer without the image, then puts the image back as bytes that decode to the PNG", async () => {
    handler = (_request, response) => writeInPieces(response, imageAnswer(pngBase64, " "))
    const exit = await call(Transport.make())
    expect(Exit.isSuccess(exit)).toBe(true)
    const answer = Exit.isSuccess(exit) ? exit.value : undefined
    const found = GeminiWire.extractImage("c", answer)
    expect(found._tag).toBe("Image")
    const bytes = found._tag === "Image" ? found.bytes : new Uint8Array()
    expect(Buffer.from(bytes).equals(pngBytes)).toBe(true)
    expect(Image.inspectImage(bytes)).toEqual({ mimeType: "image/png", width: 4, height: 3 })
    // Whoever answers with the image as base64 can copy the upstream's text: it is the same text.
    expect(Buffer.concat(Image.base64TextOf(bytes) ?? []).toString("latin1")).toBe(pngBase64)
    expect(GeminiWire.textOf(answer)).toBe("here")
    expect(GeminiWire.usageOf(answer as never)).toMatchObject({ inputTokens: 7, outputImageTokens: 1120 })
    // The key went in its header, over the transport.
    expect(seen.at(-1)?.headers["x-goog-api-key"]).toBe("test-key")
  })

  it("decompresses a gzip answer and keeps the image", async () => {
    handler = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" })
      response.end(gzipSync(imageAnswer(pngBase64)))
    }
    const exit = await call(Transport.make())
    const found = GeminiWire.extractImage("c", Exit.isSuccess(exit) ? exit.value : undefined)
    expect(found._tag === "Image" && Buffer.from(found.bytes).equals(pngBytes)).toBe(true)
  })

  it("an image whose base64 is broken in the middle is MalformedResponse, not a crash or a wrong image", async () => {
    const broken = `${pngBase64.slice(0, 10_000)}$$$$${pngBase64.slice(10_004)}`
    handler = (_request, response) => writeInPieces(response, imageAnswer(broken))
    const exit = await call(Transport.make())
    const found = GeminiWire.extractImage("c", Exit.isSuccess(exit) ? exit.value : undefined)
    expect(found._tag).toBe("Error")
    expect(found._tag === "Error" ? found.error._tag : "").toBe("MalformedResponse")
  })

  it("an error status reaches the SDK untouched and is classified as before", async () => {
    handler = (_request, response) => {
      response.writeHead(429, { "content-type": "application/json" })
      response.end(
        JSON.stringify({
          error: {
            code: 429,
            message: "Resource has been exhausted",
            status: "RESOURCE_EXHAUSTED",
            details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "7s" }],
          },
        }),
      )
    }
    const exit = await call(Transport.make())
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
    expect(error?._tag === "Fail" ? error.error : undefined).toMatchObject({ _tag: "RateLimited", retryAfterMs: 7000 })
  })

  it("a connection closed before the answer ends is Unavailable, as with fetch", async () => {
    handler = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json", "content-length": "100000" })
      response.write(imageAnswer(pngBase64).slice(0, 5000))
      setImmediate(() => response.socket?.destroy())
    }
    const exit = await call(Transport.make())
    const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
    expect(error?._tag === "Fail" ? error.error._tag : "").toBe("Unavailable")
  })

  it("interrupting the call aborts the HTTP request (the server sees the connection close)", async () => {
    let closed: () => void = () => {}
    const sawClose = new Promise<void>((resolve) => {
      closed = resolve
    })
    let arrived: () => void = () => {}
    const sawRequest = new Promise<void>((resolve) => {
      arrived = resolve
    })
    handler = (request) => {
      request.socket.once("close", () => closed())
      arrived()
    }
    const transport = Transport.make()
    const sdk = new GoogleGenAI({ apiKey: "test-key", httpOptions: { baseUrl, fetch: transport.fetch } })
    const client = GeminiWire.makeClient(sdk, (thrown) => GeminiWire.classifyThrown("c", thrown), transport)
    const fiber = Effect.runFork(
      client.generateContent({
        model: "gemini-3-pro-image",
        contents: [{ role: "user", parts: [{ text: "hang" }] }],
        config: { responseModalities: ["IMAGE"], imageConfig: { aspectRatio: "1:1" } },
      }),
    )
    await sawRequest
    await Effect.runPromise(Fiber.interrupt(fiber))
    await sawClose
  })

  it("a 200 that is not JSON is MalformedResponse; a JSON answer behind a UTF-8 byte order mark is read", async () => {
    handler = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json" })
      response.end("<html>gateway timeout</html>")
    }
    const bad = await call(Transport.make())
    const error = Exit.isFailure(bad) ? bad.cause.reasons[0] : undefined
    expect(error?._tag === "Fail" ? error.error._tag : "").toBe("MalformedResponse")
    handler = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json" })
      response.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(imageAnswer(pngBase64))]))
    }
    const good = await call(Transport.make())
    const found = GeminiWire.extractImage("c", Exit.isSuccess(good) ? good.value : undefined)
    expect(found._tag === "Image" && Buffer.from(found.bytes).equals(pngBytes)).toBe(true)
  })

  it("the answer reads like fetch's Response: headers by any case, repeated fields joined, one read of the body", async () => {
    handler = (_request, response) => {
      response.setHeader("X-Thing", ["a", "b"])
      response.writeHead(200, { "Content-Type": "application/json" })
      response.end('{"ok":true}')
    }
    const answer = await Transport.make().fetch(`${baseUrl}/anything`, { method: "POST", body: "{}" })
    expect(answer.ok).toBe(true)
    expect(answer.headers.get("content-type")).toBe("application/json")
    expect(answer.headers.get("x-thing")).toBe("a, b")
    expect(Object.fromEntries(answer.headers.entries())).toMatchObject({ "x-thing": "a, b" })
    expect(await answer.json()).toEqual({ ok: true })
    expect(answer.bodyUsed).toBe(true)
    await expect(answer.text()).rejects.toThrow(TypeError)
  })

  it("the bearer variant moves the key out of x-goog-api-key", async () => {
    handler = (_request, response) => writeInPieces(response, imageAnswer(pngBase64))
    const transport = Transport.make({
      headers: (headers) => {
        delete headers["x-goog-api-key"]
        headers.authorization = "Bearer test-key"
      },
    })
    const exit = await call(transport)
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(seen.at(-1)?.headers["x-goog-api-key"]).toBeUndefined()
    expect(seen.at(-1)?.headers.authorization).toBe("Bearer test-key")
  })
})

describe("decodeBase64 of bytes in pieces", () => {
  it("decodes pieces cut anywhere to the same bytes as the string, and refuses what the string refuses", () => {
    const text = Buffer.from(pngBase64, "latin1")
    for (const cut of [3, 4, 5, 1000, 65_537]) {
      const pieces: Array<Uint8Array> = []
      for (let at = 0; at < text.length; at += cut) pieces.push(text.subarray(at, at + cut))
      expect(Buffer.from(Image.decodeBase64(pieces) ?? []).equals(pngBytes)).toBe(true)
    }
    const bytewise = [..."QUJDREVG"].map((character) => Buffer.from(character))
    expect(Buffer.from(Image.decodeBase64(bytewise) ?? []).toString("latin1")).toBe("ABCDEF")
    expect(Image.decodeBase64([Buffer.from("QUJD"), Buffer.from("R$$$")])).toBeUndefined()
    expect(Image.decodeBase64([Buffer.from("QUJDR")])).toBeUndefined()
    expect(Buffer.from(Image.decodeBase64([Buffer.from(" QUJD\n")]) ?? []).toString("latin1")).toBe("ABC")
    // URL-safe base64 decodes, but is not remembered for reuse as standard base64.
    const urlSafe = Image.decodeBase64([Buffer.from("-_-_")])
    expect(urlSafe).toBeDefined()
    expect(Image.base64TextOf(urlSafe!)).toBeUndefined()
  })
})
