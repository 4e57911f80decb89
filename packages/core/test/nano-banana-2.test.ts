/**
 * Nano Banana 2 in planning: 512 and the extra ratios for `gemini-3.1-flash-image`; other models clamp 512
 * up to their smallest size (with the reason) and refuse the extra ratios before any call; the retired
 * `-preview` id maps to the GA id; reference images are priced in the plan.
 */
import { join } from "node:path"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Pipeline, Runner } from "../src/index.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const fixtures = join(import.meta.dirname, "fixtures")
afterEach(() => Fixture.reset())

const plan = (request: Parameters<Runner.RunnerShape["plan"]>[0]) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Pipeline.load(join(fixtures, "valid.yaml"), { env: {}, today: "2026-11-26" })
        const runner = yield* Runner.make(pipeline, { today: "2026-11-26" })
        return yield* runner.plan(request)
      }),
    ),
  )

describe("Nano Banana 2 in the plan", () => {
  it("plans 512 and 1:8 for gemini-3.1-flash-image as asked", async () => {
    const planned = await plan({ prompt: "a banner", model: "nano-banana-2", size: "512", aspectRatio: "1:8" })
    expect([planned.model, planned.size, planned.aspectRatio]).toEqual(["gemini-3.1-flash-image", "512", "1:8"])
    expect(planned.adjustments).toEqual([])
    expect(planned.candidates.length).toBeGreaterThan(0)
  })

  it("clamps 512 up to 1K for Pro, with the reason", async () => {
    const planned = await plan({ prompt: "a banner", model: "gemini-3-pro-image", size: "512" })
    expect(planned.size).toBe("1K")
    expect(planned.adjustments).toContainEqual({
      field: "size",
      from: "512",
      to: "1K",
      reason: "gemini-3-pro-image makes only 1K, 2K, 4K images",
    })
  })

  it("refuses 1:4 for Pro on every channel before any call", async () => {
    const planned = await plan({ prompt: "a banner", model: "gemini-3-pro-image", aspectRatio: "1:4" })
    expect(planned.candidates).toEqual([])
    for (const refused of planned.refused)
      expect(refused.reason).toBe(
        "model gemini-3-pro-image does not make aspect ratio 1:4 (makes 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9)",
      )
    expect(Fixture.calls.size).toBe(0)
  })

  it("maps the retired -preview id to gemini-3.1-flash-image, with the reason", async () => {
    const planned = await plan({ prompt: "a banner", model: "gemini-3.1-flash-image-preview" })
    expect(planned.model).toBe("gemini-3.1-flash-image")
    expect(planned.adjustments[0]?.reason).toContain("shut down at Google on 2026-06-25")
  })
})
