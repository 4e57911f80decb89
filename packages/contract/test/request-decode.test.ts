/**
 * `decodeRequest` decodes the common request (a plain object of plain fields) without the Schema's
 * machinery: on thousands of generated inputs — valid, invalid, unknown keys, undefined values, objects
 * that are not plain — it must give exactly what the Schema gives (the same fields, in the same order), and
 * fail where the Schema fails, with the Schema's message.
 */
import { Result, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { decodeRequest, ImageRequest } from "../src/Request.ts"

const bySchema = Schema.decodeUnknownResult(ImageRequest)
const strict = { errors: "all", onExcessProperty: "error" } as const

/** Candidate values per field: valid ones first, then values the Schema refuses. */
const pool: Record<string, ReadonlyArray<unknown>> = {
  prompt: ["a red fox", "  padded  ", "x", "", "   ", "\n\t", 42, null],
  id: ["cover", "a.b_c-1", "A".repeat(128), "A".repeat(129), "-lead", "has space", "", 7],
  use: ["hero", "", 3],
  priority: ["high", "normal", "low", "urgent", "HIGH"],
  urgency: ["realtime", "batch", "later"],
  model: ["gemini-3-pro-image", "", false],
  size: ["512", "1K", "2K", "4K", "8K", "1k", 1024],
  aspectRatio: ["1:1", "16:9", "9:16", "3:2", "2:1", "1x1"],
  n: [1, 2, 10, 0, 11, 1.5, -1, Number.NaN, "2"],
  variant: [1, 10, 0, 11, 2.5],
  seed: [0, 1, 2_147_483_647, 2_147_483_648, -1, 0.5, -0, Number.MAX_SAFE_INTEGER + 2, "1"],
  imageOnly: [true, false, "true", 1],
  metadata: [{ a: 1 }, "x"],
  images: [["x.png"], [{ path: "a.png" }], [], "x.png"],
  providerOptions: [{ google: { a: 1 } }, { google: 1 }],
  unknownKey: [1],
}
const fields = Object.keys(pool)

/** A small deterministic generator (the same inputs on every run). */
const random = (() => {
  let seed = 17
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  }
})()
const pick = <A>(values: ReadonlyArray<A>): A => values[Math.floor(random() * values.length)]!

const generated = (): unknown => {
  const input: Record<string, unknown> = {}
  // Mostly valid prompts, so most inputs get past the first field.
  if (random() < 0.9) input.prompt = random() < 0.8 ? "a red fox" : pick(pool.prompt!)
  for (const field of fields) {
    if (field === "prompt" || random() < 0.75) continue
    const values = pool[field]!
    // Valid values (the first half) twice as often as the rest.
    input[field] = random() < 0.6 ? values[Math.floor(random() * Math.ceil(values.length / 2))] : pick(values)
  }
  if (random() < 0.05) input.size = undefined
  if (random() < 0.03) return Object.assign(Object.create({ inherited: true }), input)
  if (random() < 0.03) return Object.assign(Object.create(null), input)
  if (random() < 0.02) Object.defineProperty(input, "hidden", { value: 1, enumerable: false })
  return input
}

describe("decodeRequest", () => {
  it("gives what the Schema gives on generated requests: the same fields in the same order, the same failures", () => {
    let valid = 0
    for (let index = 0; index < 5000; index++) {
      const input = generated()
      const fast = decodeRequest(input)
      const schema = bySchema(input, strict)
      expect(Result.isSuccess(fast), JSON.stringify(input)).toBe(Result.isSuccess(schema))
      if (Result.isSuccess(fast) && Result.isSuccess(schema)) {
        valid += 1
        expect(Object.keys(fast.success)).toEqual(Object.keys(schema.success))
        for (const key of Object.keys(schema.success)) {
          const [mine, theirs] = [(fast.success as never)[key], (schema.success as never)[key]]
          // Primitives identical (-0 stays -0); objects (made anew by each decode) equal.
          if (typeof theirs === "object") expect(mine, key).toEqual(theirs)
          else expect(Object.is(mine, theirs), key).toBe(true)
        }
        expect(fast.success).not.toBe(input)
      }
    }
    // Both kinds were tried, many times.
    expect(valid).toBeGreaterThan(500)
    expect(valid).toBeLessThan(4500)
  })

  it("the common request: fields in the Schema's order, not the caller's", () => {
    const decoded = decodeRequest({ size: "2K", aspectRatio: "16:9", prompt: "a red fox", seed: 3 })
    expect(Result.isSuccess(decoded) && Object.keys(decoded.success)).toEqual(["prompt", "size", "aspectRatio", "seed"])
  })

  it("a failure is the Schema's message", () => {
    const decoded = decodeRequest({ prompt: "a red fox", size: "8K", n: 0 })
    expect(Result.isFailure(decoded) && decoded.failure).toMatch(/size: .*8K.*; n: /)
  })
})
