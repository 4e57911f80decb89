/**
 * One request identity (issue 17, item 1): a re-run skips an image only when everything that determines
 * it is unchanged. Run against the simulator, counting the calls its ledger saw: a changed seed, new bytes
 * behind the same reference-image path and changed provider options each make the image again; an
 * identical re-run is skipped. One case goes through `peel run` itself, the reproduction.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { deflateSync } from "node:zlib"
import { Identity, Pipeline, type Request, Runner } from "@peel/core"
import { Simulator } from "@peel/simulator"
import { Effect, Stream } from "effect"
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest"
import { loadOptions } from "../src/plugins.ts"
import { peel, simulatorEnv } from "./cli.ts"

vi.setConfig({ testTimeout: 120_000 })

/** A whole 2×2 PNG of one colour: two colours are two valid images of one type with different bytes. */
const png = (red: number): Uint8Array => {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    return c >>> 0
  })
  const crc = (bytes: Buffer) => {
    let c = 0xffffffff
    for (const byte of bytes) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8)
    return (c ^ 0xffffffff) >>> 0
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data])
    const length = Buffer.alloc(4)
    length.writeUInt32BE(data.length)
    const check = Buffer.alloc(4)
    check.writeUInt32BE(crc(body))
    return Buffer.concat([length, body, check])
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(2, 0)
  header.writeUInt32BE(2, 4)
  header[8] = 8 // bit depth
  header[9] = 2 // truecolour
  const row = [0, red, 0, 0, red, 0, 0]
  const pixels = Buffer.from([...row, ...row])
  return new Uint8Array(
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk("IHDR", header),
      chunk("IDAT", deflateSync(pixels)),
      chunk("IEND", Buffer.alloc(0)),
    ]),
  )
}

let simulator: Simulator.Handle
let folder: string
beforeAll(async () => {
  simulator = await Simulator.start({ port: 0, seed: 17 })
  folder = mkdtempSync(join(tmpdir(), "peel-identity-"))
  writeFileSync(
    join(folder, "pipeline.yaml"),
    `version: 1
name: identity
channels:
  google:
    plugin: google-ai-studio
    baseUrl: "\${GEMINI_BASE_URL}"
    apiKey: "\${GEMINI_API_KEY}"
stages:
  - generate: { timeout: 30s }
`,
  )
})
afterAll(() => simulator.stop())
beforeEach(() => simulator.reset())

/** Run the requests with a runner writing to `out` (a fresh runner each time, as a new `peel run` would). */
const runInto = (out: string, requests: ReadonlyArray<Request.ImageRequest>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Pipeline.load(join(folder, "pipeline.yaml"), {
          ...loadOptions,
          env: simulatorEnv(simulator.url),
        })
        const runner = yield* Runner.make(pipeline, { baseDir: folder, outDir: out })
        return yield* Stream.runCollect(runner.runAll(requests))
      }),
    ),
  ).then((outcomes) => outcomes.map((outcome) => outcome._tag))

const calls = () => simulator.ledger().totals.calls

const scratch = (name: string) => mkdtempSync(join(folder, `${name}-`))

describe("a re-run skips an image only when its identity is unchanged", () => {
  it("the same id with seed 1, then seed 2: made again (2 calls)", async () => {
    const out = scratch("seed")
    expect(await runInto(out, [{ id: "cover", prompt: "a red fox", seed: 1 }])).toEqual(["Done"])
    expect(await runInto(out, [{ id: "cover", prompt: "a red fox", seed: 2 }])).toEqual(["Done"])
    expect(calls()).toBe(2)
    expect(simulator.ledger().calls.map((call) => call.seed)).toEqual([1, 2])
  })

  it("an identical re-run: skipped (1 call)", async () => {
    const out = scratch("same")
    const request: Request.ImageRequest = {
      id: "cover",
      prompt: "a red fox",
      seed: 1,
      images: ["fox.png"],
      providerOptions: { google: { temperature: 0.4 } },
    }
    writeFileSync(join(folder, "fox.png"), png(10))
    expect(await runInto(out, [request])).toEqual(["Done"])
    // whitespace in the prompt and key order of the options do not change what is asked for
    expect(
      await runInto(out, [{ ...request, prompt: "  a red\n fox ", providerOptions: { google: { temperature: 0.4 } } }]),
    ).toEqual(["Skipped"])
    expect(calls()).toBe(1)
  })

  it("new bytes behind the same reference-image path: made again", async () => {
    const out = scratch("bytes")
    const path = join(folder, "subject.png")
    const request: Request.ImageRequest = { id: "cover", prompt: "the same fox, in the snow", images: ["subject.png"] }
    writeFileSync(path, png(10))
    expect(await runInto(out, [request])).toEqual(["Done"])
    writeFileSync(path, png(200))
    expect(await runInto(out, [request])).toEqual(["Done"])
    expect(await runInto(out, [request])).toEqual(["Skipped"])
    expect(calls()).toBe(2)
  })

  it("changed provider options: made again", async () => {
    const out = scratch("options")
    const request: Request.ImageRequest = {
      id: "cover",
      prompt: "a red fox",
      providerOptions: { google: { temperature: 0.4 } },
    }
    expect(await runInto(out, [request])).toEqual(["Done"])
    expect(await runInto(out, [{ ...request, providerOptions: { google: { temperature: 0.9 } } }])).toEqual(["Done"])
    expect(calls()).toBe(2)
  })

  it("the record beside the image holds the identity; a record written before it is still read", async () => {
    const out = scratch("legacy")
    const request: Request.ImageRequest = { id: "cover", prompt: "a red fox" }
    expect(await runInto(out, [request])).toEqual(["Done"])
    const recordFile = join(out, "cover.png.json")
    const record = JSON.parse(readFileSync(recordFile, "utf8"))
    expect(record.identity).toBe("peel-identity/1")
    // An older Peel wrote the old request hash and no identity: the same request still counts as made…
    const { identity: _identity, ...legacy } = record
    writeFileSync(recordFile, JSON.stringify({ ...legacy, requestHash: Identity.legacyHash(request) }))
    expect(await runInto(out, [request])).toEqual(["Skipped"])
    // …and a changed one is made again, its record rewritten with the identity.
    expect(await runInto(out, [{ ...request, size: "2K" }])).toEqual(["Done"])
    expect(JSON.parse(readFileSync(recordFile, "utf8")).identity).toBe("peel-identity/1")
    expect(calls()).toBe(2)
  })
})

describe("peel run", () => {
  it("the issue's reproduction: --prompt with seed 1 then seed 2 under one id makes the image twice", async () => {
    const out = scratch("cli")
    const input = join(folder, "cli-requests.jsonl")
    const env = simulatorEnv(simulator.url)
    const args = ["run", join(folder, "pipeline.yaml"), "--input", input, "--out", out, "--state", join(out, ".state")]
    writeFileSync(input, `${JSON.stringify({ id: "cover", prompt: "a red fox", seed: 1 })}\n`)
    const first = await peel(args, env)
    expect(first.code, first.stderr).toBe(0)
    writeFileSync(input, `${JSON.stringify({ id: "cover", prompt: "a red fox", seed: 2 })}\n`)
    const second = await peel(args, env)
    expect(second.code, second.stderr).toBe(0)
    expect(second.stderr).toMatch(/cover: the request changed since .* was made; making it again/)
    const third = await peel(args, env)
    expect(third.code, third.stderr).toBe(0)
    expect(third.stdout).toMatch(/0 made, 1 skipped/)
    expect(calls()).toBe(2)
  })
})
