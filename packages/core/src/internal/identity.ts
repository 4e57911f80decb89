/**
 * The parts of a channel request that determine its image, in one canonical order. `plan/Identity.ts`
 * (the request identity) and `cache/Cache.ts` (the cache key) both hash these parts; they live here, at
 * the lowest rank, so that both can. See `plan/Identity.ts` for what each derived key includes.
 */
import { createHash } from "node:crypto"
import type { ChannelRequest, ReferenceImage } from "@peel/contract/Channel"
import { normalizePrompt } from "./hash.ts"

/** A reference image's bytes hashed once per loaded image (a plan's images are read once, then shared). */
const imageHashes = new WeakMap<ReferenceImage, string>()

/** SHA-256 (hex) of a reference image's bytes, computed once per loaded image. */
export const contentHash = (image: ReferenceImage): string => {
  const known = imageHashes.get(image)
  if (known !== undefined) return known
  const hash = createHash("sha256").update(image.bytes).digest("hex")
  imageHashes.set(image, hash)
  return hash
}

/** JSON with object keys sorted, so `{a, b}` and `{b, a}` hash alike. */
export const canonicalJson = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(canonicalJson)
  if (typeof value === "object" && value !== null)
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonicalJson((value as Record<string, unknown>)[key])]),
    )
  return value
}

/**
 * Everything of a channel request that reaches the upstream, model as given: whitespace-normalised prompt,
 * model, size, aspect ratio, reference images as `[mimeType, SHA-256 of the bytes]`, seed, provider
 * options (canonical JSON), image-only, variant. The request's `id` is not a part: it names the image,
 * it does not shape it.
 */
export const partsOf = (request: ChannelRequest, model: string = request.model): ReadonlyArray<unknown> => [
  normalizePrompt(request.prompt),
  model,
  request.size,
  request.aspectRatio,
  (request.images ?? []).map((image) => [image.mimeType, contentHash(image)]),
  request.seed ?? null,
  request.providerOptions === undefined ? null : canonicalJson(request.providerOptions),
  request.imageOnly === true,
  request.variant ?? null,
]

/** SHA-256 (hex) of a tagged list of parts. */
export const hashParts = (tag: string, parts: ReadonlyArray<unknown>): string =>
  createHash("sha256")
    .update(JSON.stringify([tag, ...parts]))
    .digest("hex")

/** The tag hashed with the identity's parts, also written into output records that hold an identity. */
export const version = "peel-identity/1"
