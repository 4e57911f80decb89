/**
 * `imageBytes`: answers the size of a real model's (for byte-handling benchmarks), the image itself
 * unchanged — the same PNG type and pixel size, every chunk's CRC valid — on both wire shapes.
 */
import { crc32 } from "node:zlib"
import { imageSize } from "image-size"
import { describe, expect, it } from "vitest"
import { finalImage, gemini, imageRequest, openRouter, useSimulator } from "./helpers.ts"

const minimum = 2 * 1024 * 1024
const state = useSimulator({ imageBytes: minimum })

/** Every chunk of a PNG: type and whether its CRC matches. */
const chunks = (png: Buffer) => {
  const found: Array<{ type: string; crcOk: boolean }> = []
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at)
    const typeAndData = png.subarray(at + 4, at + 8 + length)
    found.push({
      type: typeAndData.subarray(0, 4).toString("latin1"),
      crcOk: crc32(typeAndData) === png.readUInt32BE(at + 8 + length),
    })
    at += 12 + length
  }
  return found
}

describe("simulator imageBytes", () => {
  it("grows Gemini answers to at least imageBytes with a comment chunk; size and pixels unchanged", async () => {
    const response = await gemini(state.sim.url).models.generateContent({
      model: "gemini-3-pro-image",
      contents: "a red fox",
      config: imageRequest("16:9", "2K"),
    })
    const png = finalImage(response)
    expect(png.length).toBeGreaterThanOrEqual(minimum)
    expect(png.length).toBeLessThan(minimum + 64)
    const size = imageSize(png)
    expect([size.type, size.width, size.height]).toEqual(["png", 2752, 1536])
    const list = chunks(png)
    expect(list.map((chunk) => chunk.type)).toEqual(["IHDR", "IDAT", "tEXt", "IEND"])
    expect(list.every((chunk) => chunk.crcOk)).toBe(true)
  })

  it("grows OpenRouter's data URIs the same way", async () => {
    const completion = await openRouter(state.sim.url).chat.completions.create({
      model: "google/gemini-3-pro-image-preview",
      messages: [{ role: "user", content: "a red fox" }],
      modalities: ["image", "text"],
    } as never)
    const message = completion.choices[0]!.message as unknown as { images: Array<{ image_url: { url: string } }> }
    const url = message.images[0]!.image_url.url
    const png = Buffer.from(url.slice(url.indexOf(",") + 1), "base64")
    expect(png.length).toBeGreaterThanOrEqual(minimum)
    expect(imageSize(png).type).toBe("png")
  })
})
