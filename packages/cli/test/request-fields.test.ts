/**
 * The whole request through every channel against the simulator (issue 13): reference images (inline
 * parts on the Gemini routes, `image_url` parts on the OpenAI-style ones), seed, image-only output, the
 * model's text, per-channel provider options, and `n` — asserting on the request the simulator received
 * (parts, image count, seed) and on the cost (input image tokens). Bad inputs fail before any call.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Catalog, Pipeline, Pricing, type Request, Runner } from "@peel/core"
import { Simulator } from "@peel/simulator"
import { Effect, Exit, Stream } from "effect"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { loadOptions } from "../src/plugins.ts"
import { peel, simulatorEnv } from "./cli.ts"

// A real 4×3 PNG and its bytes.
const png = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC"
const pngBytes = new Uint8Array(Buffer.from(png, "base64"))

let simulator: Simulator.Handle
let folder: string
beforeAll(async () => {
  simulator = await Simulator.start({ port: 0, seed: 13 })
  folder = mkdtempSync(join(tmpdir(), "peel-request-fields-"))
  writeFileSync(join(folder, "reference.png"), pngBytes)
  writeFileSync(join(folder, "notes.txt"), "not an image at all, just some text")
  writeFileSync(join(folder, "pipeline.yaml"), pipelineText)
})
afterAll(() => simulator.stop())
beforeEach(() => simulator.reset())

const pipelineText = `version: 1
name: request-fields
channels:
  google:
    plugin: google-ai-studio
    baseUrl: "\${GEMINI_BASE_URL}"
    apiKey: "\${GEMINI_API_KEY}"
  vertex:
    plugin: vertex-ai
    baseUrl: "\${VERTEX_BASE_URL}"
    project: "\${GOOGLE_CLOUD_PROJECT}"
    location: global
    accessToken: "\${VERTEX_ACCESS_TOKEN}"
  openrouter:
    plugin: openrouter
    baseUrl: "\${OPENROUTER_BASE_URL}"
    apiKey: "\${OPENROUTER_API_KEY}"
  proxy:
    plugin: openai-compatible
    preset: laozhang
    baseUrl: "\${PROXY_BASE_URL}"
    apiKey: "\${PROXY_API_KEY}"
  proxyVision:
    plugin: openai-compatible
    baseUrl: "\${PROXY_BASE_URL}"
    apiKey: "\${PROXY_API_KEY}"
    price: 0.05
    referenceImages: 14
stages:
  - generate: { timeout: 30s }
`

/** Run `use` with a runner for the test pipeline, reduced to the channels named in `channels` (all by default). */
const withRunner = <A, E>(use: (runner: Runner.RunnerShape) => Effect.Effect<A, E>, channels?: ReadonlyArray<string>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Pipeline.load(join(folder, "pipeline.yaml"), {
          ...loadOptions,
          env: simulatorEnv(simulator.url),
        })
        const reduced =
          channels === undefined
            ? pipeline
            : { ...pipeline, channels: pipeline.channels.filter((each) => channels.includes(each.name)) }
        const runner = yield* Runner.make(reduced, { baseDir: folder })
        return yield* use(runner)
      }),
    ),
  )

/** One request through one channel alone. */
const runOn = (channel: string, request: Request.ImageRequest) =>
  withRunner((runner) => Effect.exit(runner.run(request)), [channel])

const lastBody = () => simulator.requests().at(-1)?.body as Record<string, unknown>

const expectedInputTokens = (model: string, prompt: string, images: number) =>
  Pricing.estimatePromptTokens(prompt) + images * Catalog.findModel(model)!.prices.inputImageTokens

const base = {
  prompt: "the same red fox, now in the snow",
  model: "gemini-3-pro-image",
  size: "1K",
  aspectRatio: "1:1",
} as const

describe("reference images, seed and text through each channel", () => {
  for (const channel of ["google", "vertex"]) {
    it(`${channel}: inlineData parts after the prompt, seed in generationConfig, image tokens billed`, async () => {
      const exit = await runOn(channel, {
        ...base,
        id: `fox-${channel}`,
        images: ["reference.png", { data: png, mimeType: "image/png" }],
        seed: 7,
      })
      if (!Exit.isSuccess(exit)) throw new Error(String(exit.cause))
      const result = exit.value
      const body = lastBody()
      const parts = (body.contents as Array<{ parts: Array<Record<string, unknown>> }>)[0]!.parts
      expect(parts.map((part) => Object.keys(part)[0])).toEqual(["text", "inlineData", "inlineData"])
      expect(parts[1]).toEqual({ inlineData: { mimeType: "image/png", data: png } })
      expect((body.generationConfig as Record<string, unknown>).seed).toBe(7)
      const call = simulator.ledger().calls.at(-1)!
      expect([call.referenceImages, call.seed]).toEqual([2, 7])
      // two Pro input images: 2 × 560 tokens at $2 per 1M = $0.00224 on top of the image
      expect(result.usage?.inputTokens).toBe(expectedInputTokens(base.model, base.prompt, 2))
      expect(result.costUsd).toBeCloseTo(simulator.ledger().totals.billedUsd, 9)
      expect(result.costUsd).toBeCloseTo(
        Pricing.costFromUsage(base.model, { ...result.usage!, inputTokens: result.usage!.inputTokens! - 1120 }) +
          0.00224,
        9,
      )
      expect(result.text).toBe("Here is your image.")
    })
  }

  for (const channel of ["openrouter", "proxyVision"]) {
    it(`${channel}: image_url data-URI parts after the prompt, seed in the body`, async () => {
      const exit = await runOn(channel, { ...base, id: `fox-${channel}`, images: ["reference.png"], seed: 11 })
      if (!Exit.isSuccess(exit)) throw new Error(String(exit.cause))
      const body = lastBody()
      const content = (body.messages as Array<{ content: Array<Record<string, unknown>> }>)[0]!.content
      expect(content).toEqual([
        { type: "text", text: base.prompt },
        { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } },
      ])
      expect(body.seed).toBe(11)
      const call = simulator.ledger().calls.at(-1)!
      expect([call.referenceImages, call.seed]).toEqual([1, 11])
      if (channel === "openrouter") {
        // OpenRouter's usage.cost is authoritative: Google's price with one 560-token input image, plus markup
        expect(exit.value.usage?.inputTokens).toBe(expectedInputTokens(base.model, base.prompt, 1))
        expect(exit.value.costUsd).toBeCloseTo(simulator.ledger().totals.billedUsd, 9)
      } else expect(exit.value.costUsd).toBe(0.05)
    })
  }

  it("the laozhang chat preset takes no reference images: skipped before any call", async () => {
    const exit = await runOn("proxy", { ...base, id: "fox-proxy", images: ["reference.png"] })
    expect(Exit.isFailure(exit)).toBe(true)
    expect(simulator.ledger().totals.calls).toBe(0)
    const dry = await withRunner((runner) => runner.plan({ ...base, images: ["reference.png"] }))
    expect(dry.refused).toContainEqual({ channel: "proxy", reason: "does not take reference images" })
    expect(dry.candidates).not.toContain("proxy")
  })

  it("prices reference images before the call: each channel's expected cost counts input image tokens", async () => {
    const plan = await withRunner((runner) =>
      runner.plan({ ...base, model: "gemini-3.1-flash-image", images: ["reference.png", "reference.png"] }),
    )
    const google = await withRunner((runner) =>
      Effect.succeed(runner.channels.get("google")!.price(plan.channelRequest)),
    )
    // Nano Banana 2 1K: 1,120 × $60/1M = $0.0672; two input images 2 × 258 × $0.30/1M = $0.0001548
    expect(google).toBeCloseTo(0.067355, 6) // rounded to the micro-dollar
    expect(plan.channelRequest.images).toHaveLength(2)
  })

  it("image-only output: Gemini responseModalities [IMAGE], OpenAI-style modalities [image]; no text back", async () => {
    const gemini = await runOn("google", { ...base, id: "only-google", imageOnly: true })
    expect((lastBody().generationConfig as Record<string, unknown>).responseModalities).toEqual(["IMAGE"])
    if (!Exit.isSuccess(gemini)) throw new Error(String(gemini.cause))
    expect(gemini.value.text).toBeUndefined()
    const openrouter = await runOn("openrouter", { ...base, id: "only-openrouter", imageOnly: true })
    expect(lastBody().modalities).toEqual(["image"])
    if (!Exit.isSuccess(openrouter)) throw new Error(String(openrouter.cause))
    expect(openrouter.value.text).toBeUndefined()
  })
})

describe("provider options, checked by each channel's Schema before any call", () => {
  it("passes Gemini safety settings and sampling through (keyed by plugin name)", async () => {
    const safetySettings = [{ category: "HARM_CATEGORY_DANGEROUS_CONTENT", threshold: "BLOCK_ONLY_HIGH" }]
    const exit = await runOn("google", {
      ...base,
      id: "safe",
      providerOptions: { "google-ai-studio": { safetySettings, temperature: 0.4 } },
    })
    expect(Exit.isSuccess(exit)).toBe(true)
    const body = lastBody()
    expect(body.safetySettings).toEqual(safetySettings)
    expect((body.generationConfig as Record<string, unknown>).temperature).toBe(0.4)
  })

  it("passes OpenRouter's provider routing through (keyed by channel name)", async () => {
    const exit = await runOn("openrouter", {
      ...base,
      id: "routed",
      providerOptions: { openrouter: { provider: { order: ["google-vertex"], allow_fallbacks: false } } },
    })
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(lastBody().provider).toEqual({ order: ["google-vertex"], allow_fallbacks: false })
  })

  it("refuses unknown keys, wrong values, unknown channels and reserved body keys: nothing called", async () => {
    const cases: ReadonlyArray<readonly [Record<string, Record<string, unknown>>, string]> = [
      [
        { google: { safetySettings: [{ category: "HARM_CATEGORY_X", threshold: "BLOCK_NONE" }] } },
        "providerOptions.google.safetySettings.0.category",
      ],
      [{ google: { temprature: 1 } }, "providerOptions.google.temprature"],
      [{ nowhere: { seed: 1 } }, "no channel or plugin of that name"],
      [{ proxyVision: { model: "other" } }, "Peel sets model itself"],
    ]
    for (const [providerOptions, expected] of cases) {
      const exit = await withRunner((runner) => Effect.exit(runner.run({ ...base, providerOptions })))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain(expected)
    }
    expect(simulator.ledger().totals.calls).toBe(0)
  })
})

describe("reference images are checked before any call", () => {
  const failureOf = async (images: ReadonlyArray<Request.ImageInput>) => {
    const exit = await withRunner((runner) => Effect.exit(runner.run({ ...base, id: "bad", images })))
    if (Exit.isSuccess(exit)) throw new Error("expected a failure")
    return String(exit.cause)
  }

  it("an unreadable path, a text file, bad base64, a GIF and too many images: clear errors, $0", async () => {
    expect(await failureOf(["missing.png"])).toContain("images[0] (missing.png): cannot read")
    expect(await failureOf(["missing.png"])).toContain("no such file")
    expect(await failureOf(["reference.png", "notes.txt"])).toContain(
      "images[1] (notes.txt): is not a complete PNG, JPEG or WebP image",
    )
    expect(await failureOf([{ data: "not base64!", mimeType: "image/png" }])).toContain("not valid base64")
    const gif = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64")
    expect(await failureOf([{ bytes: new Uint8Array(gif) }])).toContain("is image/gif")
    expect(await failureOf(Array.from({ length: 15 }, () => "reference.png"))).toContain("at most 14")
    expect(simulator.ledger().totals.calls).toBe(0)
  })

  it("a declared MIME type is not trusted: the bytes are sniffed", async () => {
    const exit = await runOn("google", { ...base, id: "sniffed", images: [{ data: png, mimeType: "image/jpeg" }] })
    expect(Exit.isSuccess(exit)).toBe(true)
    const parts = (lastBody().contents as Array<{ parts: Array<{ inlineData?: { mimeType: string } }> }>)[0]!.parts
    expect(parts[1]?.inlineData?.mimeType).toBe("image/png")
  })

  it("reference image content is part of the cache key and the id", async () => {
    const other = Buffer.from(pngBytes)
    other[other.length - 13] = 0x00 // same size, different bytes (CRC of IEND untouched: still a complete PNG)
    const plans = await withRunner((runner) =>
      Effect.all([
        runner.plan(base),
        runner.plan({ ...base, images: [{ bytes: pngBytes }] }),
        runner.plan({ ...base, images: [{ data: png, mimeType: "image/png" }] }),
      ]),
    )
    const [none, withImage, sameImage] = plans
    const changed = await withRunner((runner) => runner.plan({ ...base, images: [{ bytes: new Uint8Array(other) }] }))
    expect(withImage.promptHash).not.toBe(none.promptHash)
    expect(sameImage.promptHash).toBe(withImage.promptHash)
    expect(changed.promptHash).not.toBe(withImage.promptHash)
    expect(withImage.id).not.toBe(none.id)
  })
})

describe("n images", () => {
  it("n: 3 runs three requests ID-1 … ID-3 with seeds 5, 6, 7", async () => {
    const outcomes = await withRunner((runner) =>
      Stream.runCollect(runner.runAll([{ ...base, id: "trio", n: 3, seed: 5 }], { concurrency: 1 })),
    )
    const ids = outcomes.map((outcome) => (outcome._tag === "Done" ? outcome.result.id : outcome._tag)).sort()
    expect(ids).toEqual(["trio-1", "trio-2", "trio-3"])
    expect(
      simulator
        .ledger()
        .calls.map((call) => call.seed)
        .sort(),
    ).toEqual([5, 6, 7])
  })

  it("run() with n > 1 says to use runAll, before any call", async () => {
    const exit = await withRunner((runner) => Effect.exit(runner.run({ ...base, n: 2 })))
    expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("runAll")
    expect(simulator.ledger().totals.calls).toBe(0)
  })
})

describe("peel run --image, --n, --seed, --image-only", () => {
  it("sends the reference images, makes ID-1 … ID-n with consecutive seeds, and prints each", async () => {
    const out = mkdtempSync(join(tmpdir(), "peel-images-out-"))
    const reference = join(folder, "reference.png")
    const args = ["run", join(folder, "pipeline.yaml"), "--prompt", "the same fox", "--id", "fox", "--out", out]
    const { code, stdout, stderr } = await peel(
      [...args, "--image", reference, "--image", reference, "--n", "2", "--seed", "9", "--image-only", "--json"],
      simulatorEnv(simulator.url),
    )
    expect(stderr).not.toContain("Error")
    expect(code).toBe(0)
    const results = stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line))
    expect(results.map((result) => result.id).sort()).toEqual(["fox-1", "fox-2"])
    const calls = simulator.ledger().calls
    expect(calls.map((call) => [call.referenceImages, call.seed]).sort((a, b) => (a[1] ?? 0) - (b[1] ?? 0))).toEqual([
      [2, 9],
      [2, 10],
    ])
    expect(results.every((result) => result.text === undefined)).toBe(true)
  })

  it("refuses --image with --input, and a missing or unreadable --image before any call (exit 2, one line)", {
    timeout: 120_000,
  }, async () => {
    const jsonl = join(folder, "requests.jsonl")
    writeFileSync(jsonl, '{"prompt":"a fox"}\n')
    const mixed = await peel(["run", join(folder, "pipeline.yaml"), "--input", jsonl, "--image", "x.png"])
    expect(mixed.code).toBe(2)
    expect(mixed.stderr).toContain("--image, --n, --seed and --image-only go with --prompt")
    // Planning or running, one image or several: one line, exit 2, nothing called.
    for (const extra of [["--dry-run"], ["--n", "3", "--out", join(folder, "out-missing")]]) {
      const missing = await peel(
        ["run", join(folder, "pipeline.yaml"), "--prompt", "a fox", "--image", join(folder, "nope.png"), ...extra],
        simulatorEnv(simulator.url),
      )
      expect(missing.code, missing.stderr).toBe(2)
      expect(missing.stderr.trim().split("\n")).toEqual([
        expect.stringMatching(/^peel run: --image: .*nope\.png\): cannot read/),
      ])
      expect(missing.stdout).toBe("")
    }
    expect(simulator.ledger().totals.calls).toBe(0)
  })

  it("a bulk run plans each request once: its reference image URL is fetched once per run, resume included", {
    timeout: 120_000,
  }, async () => {
    // A real HTTP server holding the reference images; it counts the GETs of each path.
    const gets = new Map<string, number>()
    const server = createServer((request, response) => {
      gets.set(request.url ?? "", (gets.get(request.url ?? "") ?? 0) + 1)
      response.writeHead(200, { "content-type": "image/png" })
      response.end(pngBytes)
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      const pipeline = join(folder, "pipeline-local-images.yaml")
      writeFileSync(pipeline, `${pipelineText}network: { allowHosts: [127.0.0.1] }\n`)
      const jsonl = join(folder, "with-urls.jsonl")
      writeFileSync(
        jsonl,
        [
          { id: "url-fox", prompt: "a fox like this", images: [`${base}/fox.png`] },
          { id: "url-owl", prompt: "an owl like this", images: [`${base}/owl.png`], n: 2 },
        ]
          .map((line) => JSON.stringify(line))
          .join("\n"),
      )
      const out = mkdtempSync(join(tmpdir(), "peel-url-images-"))
      const args = ["run", pipeline, "--input", jsonl, "--out", out, "--state", join(out, "state"), "--json"]
      // --max-spend admits each request by its plan: the same plan, not a second one.
      const first = await peel([...args, "--max-spend", "5"], simulatorEnv(simulator.url))
      expect(first.code, first.stderr).toBe(0)
      expect(Object.fromEntries(gets)).toEqual({ "/fox.png": 1, "/owl.png": 1 })
      expect(simulator.ledger().totals.calls).toBe(3)
      // Again: resume finds every image by its identity (which needs the reference bytes: fetched once more).
      const second = await peel(args, simulatorEnv(simulator.url))
      expect(second.code, second.stderr).toBe(0)
      const skipped = second.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { skipped?: boolean })
      expect(skipped.map((line) => line.skipped)).toEqual([true, true, true])
      expect(Object.fromEntries(gets)).toEqual({ "/fox.png": 2, "/owl.png": 2 })
      expect(simulator.ledger().totals.calls).toBe(3)
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})
