/**
 * The OpenAI wire's pure parts: the size/quality table, strict body decoding and the mapping onto one
 * ImageRequest, error rendering, and the expiring image links (under TestClock).
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Catalog } from "@peel/contract"
import { Effect, Option, Result } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"
import {
  BadRequest,
  Forbidden,
  KeyBudgetExhausted,
  KeyRateLimited,
  NotFound,
  PayloadTooLarge,
  SafetyBlocked,
  Unauthorized,
  Unavailable,
} from "../src/Errors.ts"
import * as OpenAiErrors from "../src/openai/Errors.ts"
import * as ImageLinks from "../src/openai/ImageLinks.ts"
import * as Requests from "../src/openai/Requests.ts"
import * as Sizes from "../src/openai/Sizes.ts"

const mapped = (size?: string, quality?: string) => {
  const result = Sizes.fromOpenAi({ size, quality })
  if (result._tag === "Problem") throw new Error(result.message)
  return result.mapped
}

describe("the size/quality table", () => {
  it("maps OpenAI's named sizes to their ratio", () => {
    expect(mapped("1024x1024").aspectRatio).toBe("1:1")
    expect(mapped("1536x1024").aspectRatio).toBe("3:2")
    expect(mapped("1024x1536").aspectRatio).toBe("2:3")
    expect(mapped("1792x1024").aspectRatio).toBe("16:9")
    expect(mapped("1024x1792").aspectRatio).toBe("9:16")
    expect(mapped("auto")).toEqual({ aspectRatio: undefined, size: undefined })
    expect(mapped()).toEqual({ aspectRatio: undefined, size: undefined })
  })

  it("maps a free-form size to the ratio within 3%, Gemini's own sizes included, and never squares the rest", () => {
    expect(mapped("2100x900").aspectRatio).toBe("21:9")
    expect(mapped("4096x1024").aspectRatio).toBe("4:1")
    expect(mapped("1024x8192").aspectRatio).toBe("1:8")
    for (const model of Object.values(Catalog.models))
      for (const [size, ratios] of Object.entries(model.dimensions))
        for (const [ratio, dimensions] of Object.entries(ratios ?? {})) {
          if (model.id === "gemini-2.5-flash-image" && size !== "1K") continue
          expect(mapped(`${dimensions![0]}x${dimensions![1]}`).aspectRatio, `${model.id} ${size} ${ratio}`).toBe(ratio)
        }
    const odd = Sizes.fromOpenAi({ size: "1000x700" })
    expect(odd).toMatchObject({ _tag: "Problem", param: "size" })
    expect(Sizes.fromOpenAi({ size: "big" })).toMatchObject({ _tag: "Problem", param: "size" })
    expect(Sizes.fromOpenAi({ size: "0x100" })).toMatchObject({ _tag: "Problem", param: "size" })
  })

  it("maps quality to the tier, auto to the pipeline", () => {
    expect(mapped(undefined, "low").size).toBe("1K")
    expect(mapped(undefined, "medium").size).toBe("2K")
    expect(mapped(undefined, "high").size).toBe("4K")
    expect(mapped(undefined, "standard").size).toBe("1K")
    expect(mapped(undefined, "hd").size).toBe("4K")
    expect(mapped(undefined, "auto").size).toBeUndefined()
    expect(Sizes.fromOpenAi({ quality: "ultra" })).toMatchObject({ _tag: "Problem", param: "quality" })
  })
})

describe("the README's size table", () => {
  it("is the table the code uses, row for row", () => {
    const readme = readFileSync(join(import.meta.dirname, "..", "..", "..", "README.md"), "utf8")
    const block = /<!-- openai-size-table -->([\s\S]*?)<!-- \/openai-size-table -->/.exec(readme)?.[1]
    expect(block).toBeDefined()
    const rows = [...block!.matchAll(/^\| `([^`]+)` +\| ([^|]+?) +\|$/gm)]
      .map((match) => [match[1], match[2]])
      .filter(([openAi]) => openAi !== "size" && openAi !== "quality")
    expect(rows).toEqual([...Sizes.sizeTable, ...Sizes.qualityTable].map(([openAi, peel]) => [openAi, peel]))
  })
})

const ok = <A>(result: Result.Result<A, Requests.Refusal>): A => {
  if (Result.isFailure(result)) throw new Error(result.failure.message)
  return result.success
}
const refused = <A>(result: Result.Result<A, Requests.Refusal>): Requests.Refusal => {
  if (Result.isSuccess(result)) throw new Error("expected a refusal")
  return result.failure
}

describe("images/generations bodies", () => {
  it("map onto one ImageRequest", () => {
    const ask = ok(
      Requests.imagesGeneration({
        prompt: "a red panda",
        model: "gemini-3-pro-image",
        n: 2,
        size: "1536x1024",
        quality: "high",
        response_format: "url",
        output_format: "png",
      }),
    )
    expect(ask).toEqual({
      request: { prompt: "a red panda", model: "gemini-3-pro-image", aspectRatio: "3:2", size: "4K" },
      n: 2,
      responseFormat: "url",
      outputFormat: "png",
    })
  })

  it("leave OpenAI's own model names to the pipeline, take google/ slugs and aliases, 404 the rest", () => {
    expect(ok(Requests.imagesGeneration({ prompt: "p", model: "gpt-image-1" })).request.model).toBeUndefined()
    expect(ok(Requests.imagesGeneration({ prompt: "p", model: "dall-e-3" })).request.model).toBeUndefined()
    expect(ok(Requests.imagesGeneration({ prompt: "p", model: "google/gemini-3-pro-image" })).request.model).toBe(
      "gemini-3-pro-image",
    )
    expect(ok(Requests.imagesGeneration({ prompt: "p", model: "nano-banana-pro" })).request.model).toBe(
      "nano-banana-pro",
    )
    expect(refused(Requests.imagesGeneration({ prompt: "p", model: "gpt-5" }))).toMatchObject({
      _tag: "UnknownModel",
      param: "model",
    })
  })

  it("take null as absent and default to one b64_json image", () => {
    expect(ok(Requests.imagesGeneration({ prompt: "p", size: null, n: null, response_format: null }))).toEqual({
      request: { prompt: "p" },
      n: 1,
      responseFormat: "b64_json",
      outputFormat: undefined,
    })
  })

  it("refuse malformed shapes with the field named", () => {
    const cases: ReadonlyArray<readonly [unknown, string | undefined]> = [
      [{}, "prompt"],
      [{ prompt: "" }, "prompt"],
      [{ prompt: "   " }, "prompt"],
      [{ prompt: 42 }, "prompt"],
      [{ prompt: "p", n: 0 }, "n"],
      [{ prompt: "p", n: 11 }, "n"],
      [{ prompt: "p", n: 1.5 }, "n"],
      [{ prompt: "p", n: "2" }, "n"],
      [{ prompt: "p", size: 1024 }, "size"],
      [{ prompt: "p", size: "1000x700" }, "size"],
      [{ prompt: "p", quality: "ultra" }, "quality"],
      [{ prompt: "p", response_format: "png" }, "response_format"],
      [{ prompt: "p", output_format: "gif" }, "output_format"],
      [{ prompt: "p", background: "transparent" }, "background"],
      [{ prompt: "p", stream: true }, "stream"],
      [{ prompt: "p", promtp: "typo" }, "promtp"],
      [[], undefined],
      ["a string", undefined],
      [null, undefined],
    ]
    for (const [body, param] of cases) {
      const refusal = refused(Requests.imagesGeneration(body))
      expect(refusal._tag, JSON.stringify(body)).toBe("Invalid")
      expect(refusal.param, JSON.stringify(body)).toBe(param)
      expect(refusal.message.length).toBeGreaterThan(0)
    }
    expect(refused(Requests.imagesGeneration({ prompt: "p", promtp: "typo" })).message).toContain(
      'unknown field "promtp"',
    )
  })
})

const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47])

describe("images/edits forms", () => {
  it("take one image or several image[] files, in order, and numeric fields from text", () => {
    const one = ok(
      Requests.imagesEdit([
        { _tag: "Field", key: "prompt", value: "make it blue" },
        { _tag: "File", key: "image", contentType: "image/png", bytes: png },
        { _tag: "Field", key: "n", value: "2" },
        { _tag: "Field", key: "size", value: "1024x1536" },
      ]),
    )
    expect(one.n).toBe(2)
    expect(one.request).toEqual({
      prompt: "make it blue",
      aspectRatio: "2:3",
      images: [{ bytes: png, mimeType: "image/png" }],
    })
    const several = ok(
      Requests.imagesEdit([
        { _tag: "File", key: "image[]", contentType: "image/png", bytes: png },
        { _tag: "File", key: "image[]", contentType: "application/octet-stream", bytes: png },
        { _tag: "Field", key: "prompt", value: "combine them" },
      ]),
    )
    expect(several.request.images).toEqual([{ bytes: png, mimeType: "image/png" }, { bytes: png }])
  })

  it("refuse a mask, no image, too many images, and text where a file belongs", () => {
    const prompt = { _tag: "Field", key: "prompt", value: "p" } as const
    const image = { _tag: "File", key: "image", contentType: "image/png", bytes: png } as const
    expect(refused(Requests.imagesEdit([prompt, image, { ...image, key: "mask" }]))).toMatchObject({ param: "mask" })
    expect(refused(Requests.imagesEdit([prompt, image, { ...image, key: "mask" }])).message).toMatch(
      /mask is not supported/,
    )
    expect(refused(Requests.imagesEdit([prompt]))).toMatchObject({ param: "image" })
    expect(refused(Requests.imagesEdit([prompt, ...Array.from({ length: 15 }, () => image)]))).toMatchObject({
      param: "image",
    })
    expect(refused(Requests.imagesEdit([prompt, { _tag: "Field", key: "image", value: "x" }]))).toMatchObject({
      param: "image",
    })
    expect(refused(Requests.imagesEdit([image, { _tag: "Field", key: "n", value: "two" }, prompt]))).toMatchObject({
      param: "n",
    })
    expect(refused(Requests.imagesEdit([image]))).toMatchObject({ param: "prompt" })
  })
})

describe("chat completion bodies", () => {
  it("make the prompt of system and user texts, reference images of image_url parts, image_config the ratio and tier", () => {
    const ask = ok(
      Requests.chatCompletion({
        model: "google/gemini-3.1-flash-image",
        modalities: ["image", "text"],
        image_config: { aspect_ratio: "21:9", image_size: "0.5K" },
        seed: 7,
        messages: [
          { role: "system", content: "Photorealistic." },
          { role: "assistant", content: "an earlier answer", images: [] },
          {
            role: "user",
            content: [
              { type: "text", text: "A lighthouse at dusk" },
              { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            ],
          },
        ],
      }),
    )
    expect(ask).toEqual({
      n: 1,
      stream: false,
      request: {
        prompt: "Photorealistic.\n\nA lighthouse at dusk",
        model: "gemini-3.1-flash-image",
        aspectRatio: "21:9",
        size: "512",
        seed: 7,
        images: ["data:image/png;base64,iVBORw0KGgo="],
      },
    })
    expect(
      ok(Requests.chatCompletion({ model: "auto", modalities: ["image"], messages: [{ role: "user", content: "x" }] }))
        .request.imageOnly,
    ).toBe(true)
  })

  it("accept the text-model knobs chat clients send by default, and refuse tools", () => {
    const base = { model: "auto", messages: [{ role: "user", content: "a kite" }] }
    const knobs = {
      temperature: 0.7,
      top_p: 1,
      max_tokens: 1000,
      frequency_penalty: 0,
      presence_penalty: 0,
      stop: ["\n"],
      logit_bias: {},
      response_format: { type: "text" },
      store: false,
      metadata: { team: "web" },
      user: "u1",
    }
    expect(ok(Requests.chatCompletion({ ...base, ...knobs })).request).toEqual({ prompt: "a kite" })
    expect(refused(Requests.chatCompletion({ ...base, tools: [] })).message).toContain('unknown field "tools"')
    expect(refused(Requests.chatCompletion({ ...base, response_format: { type: "json_object" } })).param).toMatch(
      /^response_format/,
    )
  })

  it("refuse what cannot make an image", () => {
    const user = { role: "user", content: "a cat" }
    expect(refused(Requests.chatCompletion({ model: "auto", modalities: ["text"], messages: [user] }))).toMatchObject({
      param: "modalities",
    })
    expect(refused(Requests.chatCompletion({ model: "auto", messages: [] }))).toMatchObject({ param: "messages" })
    expect(
      refused(Requests.chatCompletion({ model: "auto", messages: [{ role: "user", content: " " }] })),
    ).toMatchObject({
      param: "messages",
    })
    expect(refused(Requests.chatCompletion({ messages: [user] }))).toMatchObject({ param: "model" })
    expect(
      refused(Requests.chatCompletion({ model: "auto", messages: [user], image_config: { aspect_ratio: "7:5" } })),
    ).toMatchObject({ param: "image_config.aspect_ratio" })
    expect(refused(Requests.chatCompletion({ model: "auto", messages: [user], stream: "yes" }))).toMatchObject({
      param: "stream",
    })
    expect(
      refused(Requests.chatCompletion({ model: "auto", messages: [{ role: "tool", content: "x" }] })).param,
    ).toMatch(/^messages\.0/)
    expect(
      refused(
        Requests.chatCompletion({
          model: "auto",
          messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "file:///etc/passwd" } }] }],
        }),
      ).param,
    ).toMatch(/^messages\.0\.content/)
  })
})

describe("OpenAI-shaped errors", () => {
  it("carry each class's status, type and code; 429 and 503 carry Retry-After", () => {
    const cases = [
      [new BadRequest({ message: "bad" }), 400, "invalid_request_error", "invalid_value"],
      [
        new SafetyBlocked({ reason: "IMAGE_SAFETY", message: "blocked" }),
        400,
        "invalid_request_error",
        "content_policy_violation",
      ],
      [new Unauthorized({ message: "no key" }), 401, "invalid_request_error", "invalid_api_key"],
      [new Forbidden({ message: "not this model" }), 403, "permission_error", "model_not_allowed"],
      [new NotFound({ message: "The model `x` does not exist" }), 404, "invalid_request_error", "model_not_found"],
      [new PayloadTooLarge({ message: "too large" }), 413, "invalid_request_error", "request_too_large"],
      [new KeyRateLimited({ retryAfterSeconds: 12.2, message: "slow down" }), 429, "requests", "rate_limit_exceeded"],
      [
        new KeyBudgetExhausted({ retryAfterSeconds: 3600, message: "spent" }),
        429,
        "insufficient_quota",
        "insufficient_quota",
      ],
      [new Unavailable({ retryAfterSeconds: 10, message: "down" }), 503, "server_error", "service_unavailable"],
    ] as const
    for (const [error, status, type, code] of cases) {
      const rendered = OpenAiErrors.render(error)
      expect(rendered.status, error._tag).toBe(status)
      expect(rendered.body).toEqual({ error: { message: error.message, type, param: null, code } })
    }
    expect(OpenAiErrors.render(cases[6][0]).headers).toEqual({ "retry-after": "13" })
    expect(OpenAiErrors.render(cases[7][0]).headers).toEqual({ "retry-after": "3600", "x-should-retry": "false" })
    expect(OpenAiErrors.render(cases[8][0]).headers).toEqual({ "retry-after": "10" })
    expect(OpenAiErrors.render(cases[0][0], "size").body.error.param).toBe("size")
  })
})

describe("image links", () => {
  it("serve an image under an unguessable token until the ttl passes", () =>
    Effect.gen(function* () {
      const links = yield* ImageLinks.makeMemory({ ttlMillis: 60_000 })
      const token = yield* links.put({ bytes: png, mimeType: "image/png" })
      const other = yield* links.put({ bytes: png, mimeType: "image/png" })
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(other).not.toBe(token)
      expect(ImageLinks.tokenOf(`${token}.png`)).toBe(token)
      expect(ImageLinks.tokenOf("../../etc/passwd")).toBeUndefined()
      expect(ImageLinks.pathOf(token, "image/jpeg")).toBe(`/v1/files/images/${token}.jpg`)
      yield* TestClock.adjust(59_999)
      expect(Option.getOrUndefined(yield* links.get(token))?.bytes).toBe(png)
      expect(Option.isSome(yield* links.get(token))).toBe(true)
      yield* TestClock.adjust(1)
      expect(Option.isNone(yield* links.get(token))).toBe(true)
      expect(Option.isNone(yield* links.get(ImageLinks.newToken()))).toBe(true)
    }).pipe(Effect.provide(TestClock.layer()), Effect.runPromise))

  it("drop the oldest links first past maxBytes", () =>
    Effect.gen(function* () {
      const links = yield* ImageLinks.makeMemory({ maxBytes: 10 })
      const image = { bytes: new Uint8Array(4), mimeType: "image/png" }
      const first = yield* links.put(image)
      const second = yield* links.put(image)
      const third = yield* links.put(image)
      expect(Option.isNone(yield* links.get(first))).toBe(true)
      expect(Option.isSome(yield* links.get(second))).toBe(true)
      expect(Option.isSome(yield* links.get(third))).toBe(true)
    }).pipe(Effect.provide(TestClock.layer()), Effect.runPromise))
})
