/**
 * One request identity (issue 17, items 1 and 9): what changes the image changes the identity and the
 * cache key; what only names or routes the request does not. Reference images count by content.
 */
import { createHash } from "node:crypto"
import type { Channel, ReferenceImage } from "@peel/contract/Channel"
import { describe, expect, it } from "vitest"
import { Cache, Catalog, Identity, Plan, type Request } from "../src/index.ts"

const channels: ReadonlyMap<string, Channel> = new Map()

const planOf = (request: Request.ImageRequest, images: ReadonlyArray<ReferenceImage> = []): Plan.Plan => {
  const draft = Plan.start(request, Plan.defaultLimits, "2026-12-01")
  if (!("adjustments" in draft)) throw draft
  return Plan.finish(draft, channels, Plan.defaultLimits, images)
}

/** Two images of one type and one length, differing in one byte. */
const first = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4])
const second = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 5])

describe("the cache key", () => {
  const base = { id: "x", prompt: "a fox", model: "gemini-3-pro-image", size: "2K", aspectRatio: "1:1" } as const

  it("separates two reference images of the same type whose bytes differ", () => {
    const one = Cache.keyOf({ ...base, images: [{ bytes: first, mimeType: "image/png" }] })
    const other = Cache.keyOf({ ...base, images: [{ bytes: second, mimeType: "image/png" }] })
    expect(one).not.toBe(other)
    // the same bytes in another array (loaded again) are the same image
    expect(Cache.keyOf({ ...base, images: [{ bytes: new Uint8Array(first), mimeType: "image/png" }] })).toBe(one)
  })

  it("keeps the keys earlier versions wrote (a file cache stays valid across the upgrade)", () => {
    const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex")
    const request = { ...base, seed: 3, images: [{ bytes: first, mimeType: "image/png" }] }
    const written = sha256(
      JSON.stringify([
        "peel-cache/1",
        "a fox",
        Catalog.findModel("gemini-3-pro-image")?.family,
        "2K",
        "1:1",
        [["image/png", sha256(first)]],
        3,
        null,
        false,
        null,
      ]),
    )
    expect(Cache.keyOf(request)).toBe(written)
  })
})

describe("Identity.of", () => {
  const request: Request.ImageRequest = { id: "cover", prompt: "a red fox", seed: 1 }
  const identity = Identity.of(planOf(request))

  it("changes with everything that reaches the upstream", () => {
    const changed: ReadonlyArray<Request.ImageRequest> = [
      { ...request, prompt: "a grey fox" },
      { ...request, seed: 2 },
      { ...request, model: "gemini-3.1-flash-image" },
      { ...request, size: "2K" },
      { ...request, aspectRatio: "16:9" },
      { ...request, imageOnly: true },
      { ...request, variant: 2 },
      { ...request, providerOptions: { google: { temperature: 0.9 } } },
    ]
    const identities = changed.map((each) => Identity.of(planOf(each)))
    for (const each of identities) expect(each).not.toBe(identity)
    expect(new Set(identities).size).toBe(identities.length)
  })

  it("holds reference images by content, not by where they came from", () => {
    const withImage = { ...request, images: ["subject.png"] }
    const a = Identity.of(planOf(withImage, [{ bytes: first, mimeType: "image/png" }]))
    const b = Identity.of(planOf(withImage, [{ bytes: second, mimeType: "image/png" }]))
    const moved = Identity.of(
      planOf({ ...request, images: ["elsewhere/subject.png"] }, [{ bytes: first, mimeType: "image/png" }]),
    )
    expect(a).not.toBe(identity)
    expect(a).not.toBe(b)
    expect(moved).toBe(a)
  })

  it("ignores what names or labels the request, whitespace, and the order of provider options", () => {
    const same: ReadonlyArray<Request.ImageRequest> = [
      { ...request, prompt: "  a red\n\tfox " },
      { ...request, metadata: { campaign: "spring" } },
      // the defaults the plan fills in, said explicitly
      { ...request, model: Plan.defaults.model, size: Plan.defaults.size, aspectRatio: Plan.defaults.aspectRatio },
    ]
    for (const each of same) expect(Identity.of(planOf(each))).toBe(identity)
    // the id names the file, not the image
    expect(Identity.of(planOf({ ...request, id: "other" }))).toBe(identity)
    const options = { ...request, providerOptions: { google: { a: 1, b: 2 } } }
    expect(Identity.of(planOf(options))).toBe(
      Identity.of(planOf({ ...request, providerOptions: { google: { b: 2, a: 1 } } })),
    )
  })

  it("is what the work journal keys a request by", () => {
    const plan = planOf(request)
    expect(Identity.journalKey(plan)).toEqual({ id: "cover", hash: identity })
  })
})
