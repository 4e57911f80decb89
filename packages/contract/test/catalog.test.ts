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

  it("has a table entry for every model × size × aspect ratio it makes", () => {
    for (const [id, info] of Object.entries(Catalog.models))
      for (const size of info.acceptsImageSize ? info.sizes : Catalog.Sizes)
        for (const ratio of info.aspectRatios) {
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

describe("Nano Banana 2 (gemini-3.1-flash-image)", () => {
  it("makes 512 to 4K and the extra ratios 1:4, 4:1, 1:8, 8:1; other models do not", () => {
    const info = Catalog.findModel("nano-banana-2")!
    expect(info.id).toBe("gemini-3.1-flash-image")
    expect(info.status).toBe("active")
    expect(info.sizes).toEqual(["512", "1K", "2K", "4K"])
    expect(info.aspectRatios).toEqual(expect.arrayContaining(["1:4", "4:1", "1:8", "8:1", "21:9"]))
    expect(Catalog.dimensionsOf("gemini-3.1-flash-image", "512", "1:1")).toEqual([512, 512])
    expect(Catalog.dimensionsOf("gemini-3.1-flash-image", "4K", "8:1")).toEqual([12288, 1536])
    expect(Catalog.models["gemini-3-pro-image"]!.aspectRatios).not.toContain("1:4")
    expect(Catalog.dimensionsOf("gemini-3-pro-image", "1K", "1:4")).toBeUndefined()
    expect(Catalog.Sizes[0]).toBe("512")
  })

  it("retires the -preview id in favour of the GA id and warns (not remaps) for 2.5 Flash", () => {
    expect(Catalog.retirementWarning("gemini-3.1-flash-image-preview", "2026-11-26")).toContain(
      "use gemini-3.1-flash-image",
    )
    expect(Catalog.models["gemini-2.5-flash-image"]!.status).toBe("deprecated")
    expect(Catalog.retirementWarning("gemini-2.5-flash-image", "2026-11-26")).toBeUndefined()
    expect(Catalog.statusWarning("gemini-2.5-flash-image", "2026-11-26")).toContain("prefer gemini-3.1-flash-image")
    expect(Catalog.statusWarning("gemini-2.5-flash-image", "2026-09-01")).toBeUndefined()
  })

  it("prices 747 / 1,120 / 1,680 / 2,520 tokens at $60 per 1M: $0.045 / $0.067 / $0.101 / $0.151", () => {
    const cost = (size: Catalog.Size) => Pricing.expectedCost("gemini-3.1-flash-image", size)
    expect([cost("512"), cost("1K"), cost("2K"), cost("4K")]).toEqual([0.04482, 0.0672, 0.1008, 0.1512])
    expect(Catalog.models["gemini-3.1-flash-image"]!.prices.verified).toBe("2026-11-26")
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
