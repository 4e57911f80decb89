/**
 * The OpenAI-shaped routes through the official `openai` SDK (baseURL pointed at a running gateway in front
 * of the simulator): `size`/`quality` reach the upstream as ratio and tier and come back at the model's
 * pixel size, `b64_json` and `url` answers, `n`, edits with one and several reference images (multipart
 * through `toFile`), the mask refusal, chat completions with `message.images`, the model list, each error
 * class as the SDK's typed error, bad bodies costing nothing, and no upstream key anywhere.
 */
import { GoogleGenAI } from "@google/genai"
import { imageSize } from "image-size"
import OpenAI, { toFile } from "openai"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { type Harness, startGateway, upstreamKey } from "./harness.ts"

let h: Harness
beforeAll(async () => {
  h = await startGateway()
})
afterAll(async () => {
  await h?.close()
})
beforeEach(() => h.sim.reset())

const client = (apiKey = "any-client-key") => new OpenAI({ apiKey, baseURL: `${h.url}/v1`, maxRetries: 0 })

// A real 4×3 PNG.
const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC",
  "base64",
)

const pixelsOf = (bytes: Uint8Array) => {
  const { width, height } = imageSize(bytes)
  return { width, height }
}

/** The parts of a Gemini request body these tests read. */
interface UpstreamBody {
  readonly contents: ReadonlyArray<{ readonly parts: Array<Record<string, unknown>> }>
  readonly generationConfig: Record<string, unknown>
}

const upstreamBodies = () =>
  h.sim
    .requests()
    .filter((request) => request.route === "gemini")
    .map((request) => request.body as UpstreamBody)

/** Every answer this file saw, to check no upstream key leaks. */
const seen: Array<string> = []
afterAll(() => {
  expect(seen.join("\n")).not.toContain(upstreamKey)
  expect(h.logs.join("")).not.toContain(upstreamKey)
})
const keep = (response: Response, body: string) => {
  seen.push(body, JSON.stringify([...response.headers]))
}

describe("images.generate", () => {
  it("1536x1024 quality high is a 3:2 4K image (5056x3392 on Gemini 3 Pro), with the x-peel-* headers", async () => {
    const { data, response } = await client()
      .images.generate({
        model: "gemini-3-pro-image",
        prompt: "a red panda astronaut",
        size: "1536x1024",
        quality: "high",
      })
      .withResponse()
    keep(response, JSON.stringify(data))
    expect(data.data).toHaveLength(1)
    const bytes = Buffer.from(data.data![0]!.b64_json!, "base64")
    expect(pixelsOf(bytes)).toEqual({ width: 5056, height: 3392 })
    expect(data.size).toBe("5056x3392")
    expect(data.output_format).toBe("png")
    expect(upstreamBodies().at(-1)).toMatchObject({
      generationConfig: { imageConfig: { aspectRatio: "3:2", imageSize: "4K" } },
    })
    expect(response.headers.get("x-peel-request-id")).toMatch(/^req-[0-9a-f]{20}$/)
    expect(response.headers.get("x-peel-channel")).toBe("google")
    expect(response.headers.get("x-peel-model")).toBe("gemini-3-pro-image")
    expect(response.headers.get("x-peel-attempts")).toBe("1")
    expect(response.headers.get("x-peel-cache")).toBe("miss")
    expect(Number(response.headers.get("x-peel-cost-usd"))).toBeCloseTo(h.sim.ledger().totals.billedUsd, 5)
    expect(Number(response.headers.get("x-peel-cost-usd"))).toBeGreaterThanOrEqual(0.24)
    expect(data.usage?.output_tokens).toBeGreaterThan(0)
  })

  it("1024x1536 quality low is a 2:3 1K image; OpenAI's model names leave the model to the pipeline", async () => {
    const { data, response } = await client()
      .images.generate({ model: "gpt-image-1", prompt: "a tall tower", size: "1024x1536", quality: "low" })
      .withResponse()
    expect(pixelsOf(Buffer.from(data.data![0]!.b64_json!, "base64"))).toEqual({ width: 848, height: 1264 })
    expect(response.headers.get("x-peel-model")).toBe("gemini-3-pro-image")
    expect(upstreamBodies().at(-1)).toMatchObject({
      generationConfig: { imageConfig: { aspectRatio: "2:3", imageSize: "1K" } },
    })
  })

  it("the same request again is a cache hit at $0", async () => {
    const ask = { prompt: "a quiet cached harbour", size: "1024x1024", quality: "low" } as const
    await client().images.generate(ask)
    const { response } = await client().images.generate(ask).withResponse()
    expect(response.headers.get("x-peel-cache")).toBe("hit")
    expect(response.headers.get("x-peel-cost-usd")).toBe("0.000000")
    expect(h.sim.ledger().totals.billedImages).toBe(1)
  })

  it("response_format url: a link the gateway serves (unguessable, the same bytes), 404 for any other", async () => {
    const { data, response } = await client()
      .images.generate({ prompt: "a lighthouse", size: "1792x1024", quality: "low", response_format: "url" })
      .withResponse()
    keep(response, JSON.stringify(data))
    const url = data.data![0]!.url!
    expect(data.data![0]!.b64_json).toBeUndefined()
    expect(url).toMatch(new RegExp(`^${h.url}/v1/files/images/[A-Za-z0-9_-]{43}\\.png$`))
    const image = await fetch(url)
    expect(image.status).toBe(200)
    expect(image.headers.get("content-type")).toBe("image/png")
    expect(image.headers.get("cache-control")).toMatch(/^private, max-age=(3599|3600)$/)
    expect(pixelsOf(new Uint8Array(await image.arrayBuffer()))).toEqual({ width: 1376, height: 768 })
    const again = await fetch(url)
    expect(again.status).toBe(200)
    const guessed = await fetch(`${h.url}/v1/files/images/${"A".repeat(43)}.png`)
    expect(guessed.status).toBe(404)
    expect(((await guessed.json()) as { error: { code: string } }).error.code).toBe("not_found")
  })

  it("n: 2 makes two images in two runs (variants, not a cache hit of one another)", async () => {
    const { data, response } = await client()
      .images.generate({ prompt: "two foxes", n: 2, size: "1024x1024", quality: "low" })
      .withResponse()
    expect(data.data).toHaveLength(2)
    for (const datum of data.data!)
      expect(pixelsOf(Buffer.from(datum.b64_json!, "base64"))).toEqual({ width: 1024, height: 1024 })
    expect(h.sim.ledger().totals.billedImages).toBe(2)
    expect(Number(response.headers.get("x-peel-cost-usd"))).toBeCloseTo(h.sim.ledger().totals.billedUsd, 5)
    expect(response.headers.get("x-peel-attempts")).toBe("2")
    expect(response.headers.get("x-peel-images-failed")).toBeNull()
  })

  it("n: 3 with one run refused upstream answers the two images made (both paid) and says one failed", async () => {
    h.sim.script("gemini", ["ok", "400", "ok"])
    const { data, response } = await client()
      .images.generate({ prompt: "three owls", n: 3, size: "1024x1024", quality: "low" })
      .withResponse()
    expect(data.data).toHaveLength(2)
    expect(response.headers.get("x-peel-images-failed")).toBe("1")
    expect(h.sim.ledger().totals.billedImages).toBe(2)
  })
})

describe("images.edit", () => {
  it("one image (multipart through toFile) reaches the upstream as one inlineData part", async () => {
    const response = await client().images.edit({
      model: "gemini-3-pro-image",
      image: await toFile(png, "fox.png", { type: "image/png" }),
      prompt: "the same fox, in the snow",
      size: "1024x1024",
      quality: "low",
    })
    expect(response.data).toHaveLength(1)
    const parts = upstreamBodies().at(-1)!.contents[0]!.parts
    expect(parts.map((part) => Object.keys(part)[0])).toEqual(["text", "inlineData"])
    expect(parts[1]).toEqual({ inlineData: { mimeType: "image/png", data: png.toString("base64") } })
  })

  it("several images (image[]) reach the upstream in order, with n: 2", async () => {
    const files = await Promise.all(["a.png", "b.png", "c.png"].map((name) => toFile(png, name, { type: "image/png" })))
    const response = await client().images.edit({ image: files, prompt: "combine them", n: 2, quality: "low" })
    expect(response.data).toHaveLength(2)
    for (const body of upstreamBodies()) {
      const parts = body.contents[0]!.parts
      expect(parts.filter((part) => "inlineData" in part)).toHaveLength(3)
    }
    expect(h.sim.ledger().calls.map((call) => call.referenceImages)).toEqual([3, 3])
  })

  it("a mask is refused with a clear 400 before any call", async () => {
    const refusal = await client()
      .images.edit({
        image: await toFile(png, "fox.png", { type: "image/png" }),
        mask: await toFile(png, "mask.png", { type: "image/png" }),
        prompt: "paint the masked part blue",
      })
      .catch((error: unknown) => error)
    expect(refusal).toBeInstanceOf(OpenAI.BadRequestError)
    const error = refusal as InstanceType<typeof OpenAI.BadRequestError>
    expect(error.param).toBe("mask")
    expect(error.message).toMatch(/mask is not supported/)
    expect(error.headers.get("x-peel-cost-usd")).toBe("0.000000")
    expect(h.sim.ledger().totals.calls).toBe(0)
  })
})

describe("images.edit refusals before any call", () => {
  it("a file that is not an image is a 400 naming it", async () => {
    const error = await client()
      .images.edit({ image: await toFile(Buffer.from("just some text"), "notes.txt"), prompt: "edit this" })
      .catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(OpenAI.BadRequestError)
    expect((error as Error).message).toMatch(/images\[0\].*not a complete PNG, JPEG or WebP image/)
    expect(h.sim.ledger().totals.calls).toBe(0)
  })

  it("a multipart body over the limit is a 413, with or without a Content-Length", async () => {
    const big = new Uint8Array(25 * 1024 * 1024)
    const form = new FormData()
    form.append("prompt", "too big")
    form.append("image", new Blob([big], { type: "image/png" }), "big.png")
    const declared = await fetch(`${h.url}/v1/images/edits`, {
      method: "POST",
      headers: { authorization: "Bearer k" },
      body: form,
    })
    expect(declared.status).toBe(413)
    const encoded = new Response(form)
    const chunked = await fetch(`${h.url}/v1/images/edits`, {
      method: "POST",
      headers: { authorization: "Bearer k", "content-type": encoded.headers.get("content-type")! },
      body: encoded.body,
      duplex: "half",
    } as RequestInit)
    expect(chunked.status).toBe(413)
    expect(((await chunked.json()) as { error: { code: string } }).error.code).toBe("request_too_large")
    expect(h.sim.ledger().totals.calls).toBe(0)
  })
})

describe("chat.completions with modalities and image_config", () => {
  it("answers message.images data URIs at the asked ratio and tier, usage with cost", async () => {
    const { data, response } = await client()
      .chat.completions.create({
        model: "google/gemini-3-pro-image",
        messages: [{ role: "user", content: "a lighthouse at dusk, wide" }],
        // @ts-expect-error OpenRouter's extensions, which the SDK sends as they are
        modalities: ["image", "text"],
        image_config: { aspect_ratio: "16:9", image_size: "2K" },
      })
      .withResponse()
    keep(response, JSON.stringify(data))
    const message = data.choices[0]!.message as (typeof data.choices)[0]["message"] & {
      images: Array<{ type: string; image_url: { url: string } }>
    }
    expect(data.choices[0]!.finish_reason).toBe("stop")
    expect(message.images).toHaveLength(1)
    const url = message.images[0]!.image_url.url
    expect(url).toMatch(/^data:image\/png;base64,/)
    expect(pixelsOf(Buffer.from(url.slice(url.indexOf(",") + 1), "base64"))).toEqual({ width: 2752, height: 1536 })
    expect(data.model).toBe("gemini-3-pro-image")
    expect((data.usage as unknown as { cost: number }).cost).toBeCloseTo(h.sim.ledger().totals.billedUsd, 5)
    expect(response.headers.get("x-peel-channel")).toBe("google")
    expect(upstreamBodies().at(-1)).toMatchObject({
      generationConfig: { imageConfig: { aspectRatio: "16:9", imageSize: "2K" } },
    })
  })

  it("n: 2 is two choices, one image each; the model's text with the first, the cost of both in usage", async () => {
    const data = await client().chat.completions.create({
      model: "gemini-3-pro-image",
      messages: [{ role: "user", content: "two kites" }],
      n: 2,
      // OpenRouter's extension, which the SDK sends as it is
      ...({ image_config: { image_size: "1K" } } as object),
    })
    expect(data.choices.map((choice) => choice.index)).toEqual([0, 1])
    for (const choice of data.choices)
      expect((choice.message as unknown as { images: Array<unknown> }).images).toHaveLength(1)
    expect(h.sim.ledger().totals.billedImages).toBe(2)
    expect((data.usage as unknown as { cost: number }).cost).toBeCloseTo(h.sim.ledger().totals.billedUsd, 5)
  })

  it("image_url parts are reference images; modalities [image] asks for the image alone", async () => {
    await client().chat.completions.create({
      model: "auto",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "the same fox, at night" },
            { type: "image_url", image_url: { url: `data:image/png;base64,${png.toString("base64")}` } },
          ],
        },
      ],
      // @ts-expect-error OpenRouter's extension
      modalities: ["image"],
    })
    const body = upstreamBodies().at(-1)!
    expect(body.contents[0]!.parts.filter((part) => "inlineData" in part)).toHaveLength(1)
    expect(body.generationConfig.responseModalities).toEqual(["IMAGE"])
  })

  it("stream: true answers server-sent chunks with delta.images the SDK reads, then usage", async () => {
    const stream = await client().chat.completions.create({
      model: "gemini-3-pro-image",
      messages: [{ role: "user", content: "a streamed comet" }],
      stream: true,
      // OpenRouter's extension, which the SDK sends as it is
      ...({ image_config: { aspect_ratio: "9:16", image_size: "1K" } } as object),
    })
    const images: Array<string> = []
    const finishes: Array<string | null> = []
    let cost: number | undefined
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        finishes.push(choice.finish_reason)
        for (const image of (choice.delta as { images?: Array<{ image_url: { url: string } }> }).images ?? [])
          images.push(image.image_url.url)
      }
      if (chunk.usage) cost = (chunk.usage as unknown as { cost: number }).cost
    }
    expect(images).toHaveLength(1)
    expect(pixelsOf(Buffer.from(images[0]!.slice(images[0]!.indexOf(",") + 1), "base64"))).toEqual({
      width: 768,
      height: 1376,
    })
    expect(finishes).toEqual([null, "stop"])
    expect(cost).toBeCloseTo(h.sim.ledger().totals.billedUsd, 5)
  })

  it("a safety block is a content_filter choice with no image, as OpenAI reports a filtered completion", async () => {
    h.sim.script("gemini", ["safety"])
    const data = await client().chat.completions.create({
      model: "gemini-3-pro-image",
      messages: [{ role: "user", content: "something the upstream blocks" }],
    })
    expect(data.choices[0]!.finish_reason).toBe("content_filter")
    expect((data.choices[0]!.message as unknown as { images?: unknown }).images).toBeUndefined()
  })
})

describe("GET /v1/models", () => {
  it("lists the models the pipeline serves through client.models.list()", async () => {
    const ids: Array<string> = []
    for await (const model of client().models.list()) ids.push(model.id)
    expect(ids).toContain("gemini-3-pro-image")
    expect(ids).toContain("gemini-3.1-flash-image")
    expect(ids.every((id) => !id.endsWith("-preview"))).toBe(true)
  })

  it("retrieves one served model through client.models.retrieve(), 404 for others", async () => {
    const model = await client().models.retrieve("gemini-3-pro-image")
    expect(model).toMatchObject({ id: "gemini-3-pro-image", object: "model", owned_by: "google" })
    expect((await client().models.retrieve("google/gemini-3.1-flash-image")).id).toBe("gemini-3.1-flash-image")
    const missing = await client()
      .models.retrieve("gpt-4o")
      .then(
        () => undefined,
        (error: unknown) => error,
      )
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError)
    expect((missing as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found")
  })

  it("answers a Gemini client on the same paths with Gemini's shapes (SDK 3 models.get)", async () => {
    const ai = new GoogleGenAI({ apiKey: "k", httpOptions: { baseUrl: h.url } })
    const model = await ai.models.get({ model: "gemini-3-pro-image" })
    expect(model.name).toBe("models/gemini-3-pro-image")
    const missing = await ai.models.get({ model: "gemini-1.0-pro" }).then(
      () => undefined,
      (error: unknown) => error,
    )
    expect((missing as { status?: number }).status).toBe(404)
  })

  it("answers a Gemini client on the same path with Gemini's list", async () => {
    const response = await fetch(`${h.url}/v1/models`, { headers: { "x-goog-api-key": "k" } })
    const body = (await response.json()) as { models: Array<{ name: string }> }
    expect(body.models.map((model) => model.name)).toContain("models/gemini-3-pro-image")
  })
})

describe("errors as the SDK's typed errors", () => {
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: unknown) => error,
    )

  it("400 BadRequestError for a bad field, naming it; nothing spent", async () => {
    const error = await failure(client().images.generate({ prompt: "x", size: "1000x700" as "1024x1024" }))
    expect(error).toBeInstanceOf(OpenAI.BadRequestError)
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("size")
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).type).toBe("invalid_request_error")
    expect(h.sim.ledger().totals.calls).toBe(0)
  })

  it("404 NotFoundError for an unknown model", async () => {
    const error = await failure(client().images.generate({ prompt: "x", model: "gpt-5-turbo-image" }))
    expect(error).toBeInstanceOf(OpenAI.NotFoundError)
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found")
  })

  it("a safety block on the Images API is a 400 content_policy_violation", async () => {
    h.sim.script("gemini", ["safety"])
    const error = await failure(client().images.generate({ prompt: "something blocked", quality: "low" }))
    expect(error).toBeInstanceOf(OpenAI.BadRequestError)
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("content_policy_violation")
  })

  it("503 InternalServerError with Retry-After when every path failed", async () => {
    h.sim.script("gemini", ["503", "503", "503", "503", "503", "503"])
    const error = await failure(client().images.generate({ prompt: "a doomed request", quality: "low" }))
    expect(error).toBeInstanceOf(OpenAI.InternalServerError)
    const typed = error as InstanceType<typeof OpenAI.InternalServerError>
    expect(typed.status).toBe(503)
    expect(typed.code).toBe("service_unavailable")
    expect(Number(typed.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    expect(typed.headers.get("x-peel-attempts")).not.toBe("0")
  })

  it("413 for a body over the limit, before anything is read or spent", async () => {
    const response = await fetch(`${h.url}/v1/images/generations`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer k" },
      body: JSON.stringify({ prompt: "x".repeat(25 * 1024 * 1024) }),
    })
    expect(response.status).toBe(413)
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("request_too_large")
    expect(h.sim.ledger().totals.calls).toBe(0)
  })
})

describe("malformed bodies", () => {
  const post = async (path: string, body: string, contentType = "application/json") => {
    const response = await fetch(`${h.url}${path}`, {
      method: "POST",
      headers: { "content-type": contentType, authorization: "Bearer k" },
      body,
    })
    const text = await response.text()
    keep(response, text)
    return { status: response.status, body: JSON.parse(text) as { error: Record<string, unknown> }, response }
  }

  it("get a 4xx in OpenAI's shape and cost nothing", async () => {
    const generations: ReadonlyArray<string> = [
      "not json",
      "",
      "{",
      "[]",
      "null",
      '"a string"',
      "{}",
      '{"prompt":""}',
      '{"prompt":"   "}',
      '{"prompt":42}',
      '{"prompt":"p","n":0}',
      '{"prompt":"p","n":11}',
      '{"prompt":"p","n":"2"}',
      '{"prompt":"p","size":"huge"}',
      '{"prompt":"p","size":"1000x700"}',
      '{"prompt":"p","quality":"ultra"}',
      '{"prompt":"p","response_format":"png"}',
      '{"prompt":"p","output_format":"gif"}',
      '{"prompt":"p","background":"transparent"}',
      '{"prompt":"p","stream":true}',
      '{"prompt":"p","extra":1}',
      '{"prompt":"p","model":"no-such-model"}',
    ]
    const chats: ReadonlyArray<string> = [
      '{"model":"auto"}',
      '{"model":"auto","messages":[]}',
      '{"model":"auto","messages":[{"role":"tool","content":"x"}]}',
      '{"model":"auto","messages":[{"role":"user","content":"x"}],"modalities":["text"]}',
      '{"model":"auto","messages":[{"role":"user","content":"x"}],"image_config":{"aspect_ratio":"7:5"}}',
      '{"model":"auto","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]}',
      '{"messages":[{"role":"user","content":"x"}]}',
      '{"model":"auto","messages":[{"role":"user","content":"x"}],"stream":"yes"}',
    ]
    for (const body of generations) {
      const answer = await post("/v1/images/generations", body)
      expect(answer.status, body).toBeGreaterThanOrEqual(400)
      expect(answer.status, body).toBeLessThan(500)
      expect(Object.keys(answer.body.error).sort(), body).toEqual(["code", "message", "param", "type"])
      expect(answer.response.headers.get("x-peel-cost-usd"), body).toBe("0.000000")
    }
    for (const body of chats) {
      const answer = await post("/v1/chat/completions", body)
      expect(answer.status, body).toBe(400)
    }
    expect((await post("/v1/images/edits", '{"prompt":"p"}')).status).toBe(400)
    expect((await post("/v1/images/edits", "--x\r\nbroken", "multipart/form-data; boundary=x")).status).toBe(400)
    expect(h.sim.ledger().totals.calls).toBe(0)
  })
})
