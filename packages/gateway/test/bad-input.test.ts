/**
 * Bad input never reaches an upstream and costs nothing: bodies that are not JSON, a 50 MB body, unknown
 * models and methods, and 30 malformed shapes each get a 4xx in Google's error shape, and the simulator's
 * ledger records no call at all.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Harness, startGateway } from "./harness.ts"

let h: Harness
beforeAll(async () => {
  h = await startGateway()
})
afterAll(async () => {
  await h?.close()
})

const path = "/v1beta/models/gemini-3-pro-image:generateContent"
const text = (value: string) => ({ contents: [{ parts: [{ text: value }] }] })
const png1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

/** 30 bodies of the wrong shape, each with what its error must mention. */
const malformed: ReadonlyArray<readonly [string, unknown, RegExp]> = [
  ["an array", [text("a fox")], /object/],
  ["a string", "a fox", /object/],
  ["a number", 42, /object/],
  ["null", null, /object/],
  ["no contents", {}, /contents/],
  ["contents not an array", { contents: "a fox" }, /contents/],
  ["contents empty", { contents: [] }, /contents/],
  ["a content without parts", { contents: [{ role: "user" }] }, /parts/],
  ["parts not an array", { contents: [{ parts: { text: "a fox" } }] }, /parts/],
  ["a text that is a number", { contents: [{ parts: [{ text: 7 }] }] }, /text/],
  ["an unknown part field", { contents: [{ parts: [{ txt: "a fox" }] }] }, /txt/],
  ["an unknown role", { contents: [{ role: "system", parts: [{ text: "a fox" }] }] }, /role/],
  ["no text at all", { contents: [{ parts: [{ inlineData: { mimeType: "image/png", data: png1x1 } }] }] }, /prompt/],
  ["only whitespace", text("   "), /prompt/],
  [
    "inlineData without data",
    { contents: [{ parts: [{ text: "a" }, { inlineData: { mimeType: "image/png" } }] }] },
    /data/,
  ],
  [
    "inlineData that is not an image",
    { contents: [{ parts: [{ text: "a" }, { inlineData: { mimeType: "image/png", data: "aGVsbG8=" } }] }] },
    /image/,
  ],
  [
    "15 reference images",
    {
      contents: [
        {
          parts: [
            { text: "a" },
            ...Array.from({ length: 15 }, () => ({ inlineData: { mimeType: "image/png", data: png1x1 } })),
          ],
        },
      ],
    },
    /14/,
  ],
  ["fileData", { contents: [{ parts: [{ text: "a" }, { fileData: { fileUri: "gs://x/y.png" } }] }] }, /fileData/],
  ["an unknown top-level field", { ...text("a fox"), generation_konfig: {} }, /generationKonfig/],
  ["generationConfig not an object", { ...text("a fox"), generationConfig: "4K" }, /generationConfig/],
  [
    "imageSize lowercase",
    { ...text("a fox"), generationConfig: { imageConfig: { imageSize: "4k" } } },
    /generationConfig\.imageConfig\.imageSize/,
  ],
  [
    "imageSize 8K",
    { ...text("a fox"), generationConfig: { imageConfig: { imageSize: "8K" } } },
    /imageSize: Expected "512" \| "1K" \| "2K" \| "4K", got "8K"/,
  ],
  [
    "an unknown aspect ratio",
    { ...text("a fox"), generationConfig: { imageConfig: { aspectRatio: "7:3" } } },
    /generationConfig\.imageConfig\.aspectRatio/,
  ],
  [
    "an unknown imageConfig field",
    { ...text("a fox"), generationConfig: { imageConfig: { personGeneration: "ALLOW" } } },
    /personGeneration/,
  ],
  [
    "responseModalities without IMAGE",
    { ...text("a fox"), generationConfig: { responseModalities: ["TEXT"] } },
    /IMAGE/,
  ],
  [
    "an unknown modality",
    { ...text("a fox"), generationConfig: { responseModalities: ["VIDEO"] } },
    /responseModalities/,
  ],
  ["a fractional seed", { ...text("a fox"), generationConfig: { seed: 1.5 } }, /seed/],
  ["a negative seed", { ...text("a fox"), generationConfig: { seed: -1 } }, /generationConfig\.seed/],
  ["candidateCount 4", { ...text("a fox"), generationConfig: { candidateCount: 4 } }, /candidateCount/],
  ["tools", { ...text("a fox"), tools: [{ googleSearch: {} }] }, /tools/],
]

const send = (body: string, target = path, contentType = "application/json") =>
  fetch(`${h.url}${target}`, { method: "POST", headers: { "content-type": contentType, "x-goog-api-key": "k" }, body })

describe("bad input gets a 4xx and costs nothing", () => {
  it("has 30 malformed shapes", () => {
    expect(malformed.length).toBe(30)
  })

  for (const [name, body, mentions] of malformed) {
    it(`400 for ${name}`, async () => {
      const response = await send(JSON.stringify(body))
      const answer = (await response.json()) as { error: { code: number; status: string; message: string } }
      expect(response.status).toBe(400)
      expect(answer.error.status).toBe("INVALID_ARGUMENT")
      expect(answer.error.message).toMatch(mentions)
      expect(response.headers.get("x-peel-cost-usd")).toBe("0.000000")
    })
  }

  it("400 for bodies that are not JSON", async () => {
    for (const body of ["", "{", "a fox", "<xml/>", "\u0000\u0001", '{"contents": [}']) {
      const response = await send(body, path, "text/plain")
      expect(response.status, JSON.stringify(body)).toBe(400)
    }
  })

  it("413 for a 50 MB body, before it is read", async () => {
    const response = await send(JSON.stringify(text("x".repeat(50 * 1024 * 1024))))
    expect(response.status).toBe(413)
  })

  it("404 for unknown models and methods", async () => {
    for (const target of [
      "/v1beta/models/gemini-9-ultra:generateContent",
      "/v1beta/models/gemini-3-pro-image:countTokens",
      "/v1beta/models/gemini-3-pro-image",
      "/v2/models/gemini-3-pro-image:generateContent",
    ])
      expect((await send(JSON.stringify(text("a fox")), target)).status, target).toBe(404)
  })

  it("made no upstream call for any of it", () => {
    expect(h.sim.ledger().totals.calls).toBe(0)
    expect(h.sim.requests()).toEqual([])
  })
})
