/**
 * Reference images as requests give them: a URL (downloaded within limits), a data: URI, base64 with a
 * MIME type, bytes; every problem an InvalidRequest naming the image. Downloads go to a real local HTTP
 * server, which is loopback: refused unless the pipeline's `network.allowHosts` lists it.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { it as effectIt } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Inputs, Network } from "../src/index.ts"
import { guardedLookup } from "../src/plan/Download.ts"

const png = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC"
const pngBytes = Buffer.from(png, "base64")

let server: Server
let url: string
let port: number
/** Paths the server was asked for, in order. */
const seen: Array<string> = []
/** Resolved when the never-ending response has started. */
let hanging: Promise<void>
let markHanging: () => void = () => {}

beforeAll(async () => {
  hanging = new Promise<void>((resolve) => {
    markHanging = resolve
  })
  server = createServer((request, response) => {
    seen.push(request.url ?? "")
    const path = (request.url ?? "").split("?")[0]
    if (path === "/fox.png") {
      response.writeHead(200, { "content-type": "image/png" })
      response.end(pngBytes)
    } else if (path === "/huge.png") {
      response.writeHead(200, { "content-length": String(Inputs.imageLimits.maxImageBytes + 1) })
      response.end()
    } else if (path === "/endless.png") {
      // No content-length, and never ends: only the reader can stop it.
      response.writeHead(200, { "content-type": "image/png" })
      const chunk = Buffer.alloc(64 * 1024, 1)
      const write = () => {
        while (!response.destroyed && response.write(chunk)) {}
        if (!response.destroyed) response.once("drain", write)
      }
      write()
    } else if (path === "/hang.png") {
      response.writeHead(200, { "content-type": "image/png" })
      response.write(pngBytes.subarray(0, 8))
      markHanging()
    } else if (path === "/moved.png") {
      response.writeHead(302, { location: "/fox.png" })
      response.end()
    } else if (path === "/to-other-loopback.png") {
      response.writeHead(302, { location: `http://127.0.0.2:${port}/fox.png` })
      response.end()
    } else if (path === "/loop.png") {
      response.writeHead(301, { location: "/loop.png" })
      response.end()
    } else {
      response.writeHead(404)
      response.end("not found")
    }
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  port = (server.address() as AddressInfo).port
  url = `http://127.0.0.1:${port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

const allowed = { allowHosts: ["127.0.0.1"] }

const loadEffect = (images: ReadonlyArray<unknown>, network?: Inputs.LoadOptions["network"]) =>
  Inputs.loadImages({ prompt: "x", images } as never, "req", { network })

const load = (images: ReadonlyArray<unknown>, network: Inputs.LoadOptions["network"] = allowed) =>
  Effect.runPromiseExit(loadEffect(images, network))

const message = async (images: ReadonlyArray<unknown>, network: Inputs.LoadOptions["network"] = allowed) => {
  const exit = await load(images, network)
  return Exit.isFailure(exit) ? String(exit.cause) : "succeeded"
}

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
    expect(await message([`${url}/missing.png`])).toContain(
      `req: images[0] (${url}/missing.png): cannot download: answered HTTP 404`,
    )
    expect(await message([`${url}/huge.png`])).toContain("at most 7.0 MB each")
    expect(await message(["data:image/png,not-base64"])).toContain("a data: URI must be base64")
  })

  it("reads a path through the FileSystem and names a missing file or a folder", async () => {
    const folder = import.meta.dirname
    expect(await message([{ path: join(folder, "no-such.png") }])).toContain(
      `cannot read ${join(folder, "no-such.png")}: no such file`,
    )
    expect(await message([folder])).toContain(`cannot read ${folder}: it is a folder`)
    const file = join(mkdtempSync(join(tmpdir(), "peel-inputs-")), "fox.png")
    writeFileSync(file, pngBytes)
    const exit = await load([file, { path: `file://${file}` }])
    if (!Exit.isSuccess(exit)) throw new Error(String(exit.cause))
    expect(exit.value.map((image) => image.bytes)).toEqual([new Uint8Array(pngBytes), new Uint8Array(pngBytes)])
  })

  it("never puts a URL's query string or credentials in a message", async () => {
    const text = await message([`http://user:secret-password@127.0.0.1:${port}/missing.png?key=secret-token`])
    expect(text).toContain(`images[0] (${url}/missing.png?…): cannot download: answered HTTP 404`)
    expect(text).not.toContain("secret")
  })
})

describe("Inputs.loadImages: which hosts a download may reach", () => {
  it("refuses a loopback address unless network.allowHosts lists it, before any request is sent", async () => {
    const before = seen.length
    expect(await message([`${url}/fox.png`], {})).toContain(
      `req: images[0] (${url}/fox.png): refused: 127.0.0.1, a loopback address; list the host under network.allowHosts`,
    )
    expect(await message([`${url}/fox.png`], { allowHosts: ["images.internal"] })).toContain("a loopback address")
    expect(seen.length).toBe(before)
  })

  it("decides on the resolved address, not on the host name as written", async () => {
    const text = await message([`http://localhost:${port}/fox.png`], {})
    expect(text).toMatch(/refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address/)
  })

  it("takes names, addresses and ranges in allowHosts", async () => {
    expect(Exit.isSuccess(await load([`${url}/fox.png`], { allowHosts: ["127.0.0.0/8"] }))).toBe(true)
    expect(Exit.isSuccess(await load([`http://localhost:${port}/fox.png`], { allowHosts: ["localhost"] }))).toBe(true)
  })

  it("follows a redirect on an allowed host, checking the target", async () => {
    const exit = await load([`${url}/moved.png`])
    expect(Exit.isSuccess(exit)).toBe(true)
  })

  it("refuses a redirect from an allowed host to one that is not allowed, without calling it", async () => {
    const before = seen.length
    expect(await message([`${url}/to-other-loopback.png`])).toContain(
      `(${url}/to-other-loopback.png): redirected to http://127.0.0.2:${port}/fox.png: refused: 127.0.0.2, a loopback address`,
    )
    expect(seen.slice(before)).toEqual(["/to-other-loopback.png"])
  })

  it("stops after network.maxRedirects redirects", async () => {
    const before = seen.length
    expect(await message([`${url}/loop.png`], { ...allowed, maxRedirects: 3 })).toContain(
      "cannot download: redirected more than 3 times",
    )
    expect(seen.length - before).toBe(4)
  })

  it("cuts off a body past the size limit instead of reading it all", async () => {
    expect(await message([`${url}/endless.png`])).toContain(
      `req: images[0] (${url}/endless.png): is over 7.0 MB; at most 7.0 MB each`,
    )
  })

  effectIt.effect("gives up on a server that never finishes, after network.downloadTimeout", () =>
    Effect.gen(function* () {
      const fiber = yield* loadEffect([`${url}/hang.png`], { ...allowed, downloadTimeoutMillis: 5000 }).pipe(
        Effect.forkChild,
      )
      yield* Effect.promise(() => hanging)
      yield* TestClock.adjust("5 seconds")
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit) ? String(exit.cause) : "succeeded").toContain(
        `req: images[0] (${url}/hang.png): cannot download: timed out after 5 s`,
      )
    }),
  )
})

describe("Download.guardedLookup: the check again when the socket connects", () => {
  const lookupWith = (allowHosts: ReadonlyArray<string>, host: string, all: boolean) =>
    new Promise<{ error: Error | null; found: unknown }>((resolve) =>
      guardedLookup(Network.allowList(allowHosts))(host, { all }, (error, found) =>
        resolve({ error: error as Error | null, found }),
      ),
    )

  it("refuses a name that resolves to loopback, and gives the addresses when allowed", async () => {
    const refused = await lookupWith([], "localhost", false)
    expect(refused.error?.message).toMatch(/^refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address/)
    const byName = await lookupWith(["localhost"], "localhost", true)
    expect(byName.error).toBeNull()
    expect((byName.found as ReadonlyArray<{ address: string }>).length).toBeGreaterThan(0)
    const byAddress = await lookupWith(["127.0.0.1", "::1"], "localhost", false)
    expect(byAddress.error).toBeNull()
    expect(["127.0.0.1", "::1"]).toContain(byAddress.found)
  })
})
