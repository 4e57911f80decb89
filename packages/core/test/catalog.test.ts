import { describe, expect, it } from "vitest"
import { Catalog, Pricing } from "../src/index.ts"

describe("Catalog", () => {
  it("has the official Pro pixel sizes for 1K / 2K / 4K", () => {
    expect(Catalog.dimensionsOf("gemini-3-pro-image", "1K", "1:1")).toEqual([1024, 1024])
    expect(Catalog.dimensionsOf("gemini-3-pro-image", "2K", "16:9")).toEqual([2752, 1536])
    expect(Catalog.dimensionsOf("gemini-3-pro-image", "4K", "16:9")).toEqual([5504, 3072])
    expect(Catalog.dimensionsOf("gemini-3-pro-image", "4K", "9:16")).toEqual([3072, 5504])
    expect(Catalog.dimensionsOf("gemini-3-pro-image", "1K", "21:9")).toEqual([1584, 672])
    expect(Catalog.dimensionsOf("gemini-3-pro-image-preview", "4K", "21:9")).toEqual([6336, 2688])
  })

  it("gives Flash Image its fixed ~1024 px table whatever the size", () => {
    for (const size of Catalog.Sizes) {
      expect(Catalog.dimensionsOf("gemini-2.5-flash-image", size, "16:9")).toEqual([1344, 768])
      expect(Catalog.dimensionsOf("gemini-2.5-flash-image", size, "21:9")).toEqual([1536, 672])
    }
    expect(Catalog.findModel("gemini-2.5-flash-image")?.acceptsImageSize).toBe(false)
  })

  it("has a table entry for every model × size × aspect ratio", () => {
    for (const id of Object.keys(Catalog.models))
      for (const size of Catalog.Sizes)
        for (const ratio of Catalog.AspectRatios) {
          const [width, height] = Catalog.dimensionsOf(id, size, ratio)!
          expect(width).toBeGreaterThan(0)
          const [w, h] = ratio.split(":").map(Number) as [number, number]
          expect(Math.abs(width / height - w / h)).toBeLessThan(0.06)
        }
  })

  it("expects 1120 / 1120 / 2000 output tokens for Pro and 1290 for Flash", () => {
    expect(Catalog.models["gemini-3-pro-image"]!.outputTokens).toEqual({ "1K": 1120, "2K": 1120, "4K": 2000 })
    expect(Catalog.models["gemini-2.5-flash-image"]!.outputTokens["4K"]).toBe(1290)
  })

  it("knows the preview id is retired in favour of gemini-3-pro-image, and the sizes each model makes", () => {
    expect(Catalog.retirementWarning("gemini-3-pro-image-preview", "2026-11-25")).toContain("use gemini-3-pro-image")
    expect(Catalog.retirementWarning("gemini-3-pro-image-preview", "2026-01-01")).toBeUndefined()
    expect(Catalog.retirementWarning("gemini-3-pro-image", "2026-11-25")).toBeUndefined()
    expect(Catalog.models["gemini-3-pro-image"]!.sizes).toEqual(["1K", "2K", "4K"])
    expect(Catalog.models["gemini-2.5-flash-image"]!.sizes).toEqual(["1K"])
    expect(Catalog.findModel("toString")).toBeUndefined()
    expect(Catalog.resolveModel("nano-banana-pro")).toBe("gemini-3-pro-image")
    expect(Catalog.findModel("nano-banana")?.id).toBe("gemini-2.5-flash-image")
  })
})

describe("Pricing", () => {
  it("prices images from the catalog: Pro 2K $0.1344, 4K $0.24, Flash $0.0387, batch half", () => {
    expect(Pricing.expectedCost("gemini-3-pro-image", "2K")).toBeCloseTo(0.1344, 6)
    expect(Pricing.expectedCost("gemini-3-pro-image", "4K")).toBeCloseTo(0.24, 6)
    expect(Pricing.expectedCost("gemini-2.5-flash-image", "4K")).toBeCloseTo(0.0387, 6)
    expect(Pricing.expectedCost("gemini-3-pro-image", "2K", "batch")).toBeCloseTo(0.0672, 6)
    expect(Pricing.expectedCost("unknown-model", "2K")).toBe(0)
  })

  it("prices reported usage: prompt at the input price, thoughts and text at the output price", () => {
    const usd = Pricing.costFromUsage("gemini-3-pro-image", {
      inputTokens: 14,
      outputImageTokens: 1120,
      outputTextTokens: 103,
      thoughtTokens: 106,
    })
    expect(usd).toBeCloseTo((14 * 2 + 1120 * 120 + 209 * 12) / 1e6, 6)
  })
})
