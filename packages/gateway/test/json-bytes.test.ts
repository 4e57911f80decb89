/**
 * JsonBytes: an image answer written as bytes is byte for byte what `JSON.stringify` would have written,
 * whatever surrounds the images (several images, data-URI prefixes, non-ASCII text, text that looks like
 * the markers), and a body without images is plain JSON.
 */
import { randomBytes } from "node:crypto"
import { describe, expect, it } from "vitest"
import { Base64, encode } from "../src/JsonBytes.ts"

describe("JsonBytes.encode", () => {
  it("writes Base64 values as JSON.stringify would", () => {
    const first = randomBytes(300_001)
    const second = new Uint8Array(randomBytes(64).buffer, 7, 40)
    const body = {
      candidates: [
        {
          content: {
            parts: [
              { text: 'Voilà — ein Bild 🖼️ "quoted" \\ \u0000peel:0\u0000' },
              { inlineData: { mimeType: "image/png", data: new Base64(first) } },
              { inlineData: { mimeType: "image/jpeg", data: new Base64(second) } },
            ],
          },
        },
      ],
      data: [{ url: new Base64(first, "data:image/png;base64,") }],
      empty: new Base64(new Uint8Array(0)),
    }
    const bytes = encode(body)
    expect(bytes.toString("utf8")).toBe(JSON.stringify(body))
    const parsed = JSON.parse(bytes.toString("utf8"))
    expect(Buffer.from(parsed.candidates[0].content.parts[1].inlineData.data, "base64").equals(first)).toBe(true)
    expect(Buffer.from(parsed.candidates[0].content.parts[2].inlineData.data, "base64")).toEqual(Buffer.from(second))
    expect(parsed.data[0].url).toBe(`data:image/png;base64,${first.toString("base64")}`)
    expect(parsed.empty).toBe("")
  })

  it("writes a body without images as plain JSON", () => {
    const body = [{ a: 1, b: "é", c: [null, true] }]
    expect(encode(body).toString("utf8")).toBe(JSON.stringify(body))
  })
})
