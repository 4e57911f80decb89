/**
 * Thought parts never become the image: Gemini 3 image models send draft images and text while they
 * "think" (`thought: true`), and only the final, non-thought image is the answer.
 */
import { describe, expect, it } from "vitest"
import { GeminiWire } from "../src/index.ts"

// Two different real PNGs: the final image (4×3) and a thought draft (1×1).
const finalPng = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC"
const draftPng = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

const answer = (parts: Array<unknown>) => ({
  candidates: [{ content: { role: "model", parts }, finishReason: "STOP", index: 0 }],
})

const bytesOf = (extracted: GeminiWire.Extracted): string | undefined =>
  extracted._tag === "Image" ? Buffer.from(extracted.bytes).toString("base64") : undefined

describe("extractImage and thought parts", () => {
  it("an answer whose only image is a thought image has no image (NoImage)", () => {
    const extracted = GeminiWire.extractImage(
      "c",
      answer([
        { text: "Composing the scene.", thought: true },
        { inlineData: { mimeType: "image/png", data: draftPng }, thought: true },
        { text: "Here is your image." },
      ]),
    )
    expect(extracted._tag).toBe("Error")
    if (extracted._tag === "Error") expect(extracted.error._tag).toBe("NoImage")
  })

  it("a thought image after the final one does not win: the final image does", () => {
    const extracted = GeminiWire.extractImage(
      "c",
      answer([
        { text: "Here is your image." },
        { inlineData: { mimeType: "image/png", data: finalPng } },
        { inlineData: { mimeType: "image/png", data: draftPng }, thought: true },
        { text: "one more draft", thought: true },
      ]),
    )
    expect(extracted._tag).toBe("Image")
    expect(bytesOf(extracted)).toBe(finalPng)
  })

  it("the same with the snake_case inline_data spelling", () => {
    const extracted = GeminiWire.extractImage(
      "c",
      answer([
        { inline_data: { mime_type: "image/png", data: finalPng } },
        { inline_data: { mime_type: "image/png", data: draftPng }, thought: true },
      ]),
    )
    expect(bytesOf(extracted)).toBe(finalPng)
  })

  it("a thought text part holding a data-URI is ignored", () => {
    const only = GeminiWire.extractImage(
      "c",
      answer([{ text: `Draft: ![draft](data:image/png;base64,${draftPng})`, thought: true }, { text: "Done." }]),
    )
    expect(only._tag).toBe("Error")
    if (only._tag === "Error") expect(only.error._tag).toBe("NoImage")

    const withFinal = GeminiWire.extractImage(
      "c",
      answer([
        { text: `Here it is: ![image](data:image/png;base64,${finalPng})` },
        { text: `Draft: ![draft](data:image/png;base64,${draftPng})`, thought: true },
      ]),
    )
    expect(bytesOf(withFinal)).toBe(finalPng)
  })
})
