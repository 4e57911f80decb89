/**
 * Reference images as requests give them: a URL (downloaded within limits), a data: URI, base64 with a
 * MIME type, bytes; every problem an InvalidRequest naming the image.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Exit } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Inputs } from "../src/index.ts"

const png = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC"
const pngBytes = Buffer.from(png, "base64")

let server: Server
let url: string
beforeAll(async () => {
  server = createServer((request, response) => {
    if (request.url === "/fox.png") {
      response.writeHead(200, { "content-type": "image/png" })
      response.end(pngBytes)
    } else if (request.url === "/huge.png") {
      response.writeHead(200, { "content-length": String(Inputs.imageLimits.maxImageBytes + 1) })
      response.end()
    } else {
      response.writeHead(404)
      response.end("not found")
    }
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

const load = (images: ReadonlyArray<unknown>) =>
  Effect.runPromiseExit(Inputs.loadImages({ prompt: "x", images } as never, "req"))

describe("Inputs.loadImages", () => {
  it("downloads a URL, decodes a data: URI and base64, takes bytes; every one sniffed as PNG", async () => {
    const exit = await load([
      `${url}/fox.png`,
      { url: `${url}/fox.png` },
      `data:image/png;base64,${png}`,
      { data: png, mimeType: "image/webp" },
      { bytes: new Uint8Array(pngBytes) },
    ])
    if (!Exit.isSuccess(exit)) throw new Error(String(exit.cause))
    expect(exit.value.map((image) => [image.mimeType, image.bytes.length])).toEqual(
      Array.from({ length: 5 }, () => ["image/png", pngBytes.length]),
    )
  })

  it("names the image and the problem: HTTP error, too large, not base64 data URI", async () => {
    const message = async (images: ReadonlyArray<unknown>) => {
      const exit = await load(images)
      return Exit.isFailure(exit) ? String(exit.cause) : "succeeded"
    }
    expect(await message([`${url}/missing.png`])).toContain(
      `req: images[0] (${url}/missing.png): cannot download: answered HTTP 404`,
    )
    expect(await message([`${url}/huge.png`])).toContain("at most 7.0 MB each")
    expect(await message(["data:image/png,not-base64"])).toContain("a data: URI must be base64")
  })
})
