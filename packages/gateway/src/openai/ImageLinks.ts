/**
 * The images behind `response_format: "url"` answers: the gateway keeps each image in memory and serves it
 * at `GET /v1/files/images/{token}.{ext}` until it expires — one hour by default, like OpenAI's own image
 * links. The token is 32 random bytes from `node:crypto` (base64url, 256 bits), so a link cannot be guessed;
 * the link is the only credential (no API key is needed to fetch it, as with OpenAI's signed links), and it
 * serves the same bytes as often as asked until it expires. Expiry reads the Effect `Clock`, so tests move
 * time with `TestClock`.
 *
 * Memory is bounded: past `maxBytes` (256 MB by default) the links that expire soonest are dropped first.
 * Links live in one gateway process: behind a load balancer with several gateways, route `/v1/files/*`
 * back to the same process (sticky sessions) or ask for `b64_json`.
 *
 * @since 0.5.0
 */
import { randomBytes } from "node:crypto"
import { Clock, Context, Effect, Layer, Option } from "effect"

/** A kept image. @category models */
export interface Stored {
  readonly bytes: Uint8Array
  readonly mimeType: string
  /** Epoch milliseconds after which the link answers 404. */
  readonly expiresAt: number
}

/** @category models */
export interface ImageLinksShape {
  /** Keep an image; its token (the unguessable part of its link). */
  readonly put: (image: { readonly bytes: Uint8Array; readonly mimeType: string }) => Effect.Effect<string>
  /** The image behind a token, while it has not expired. */
  readonly get: (token: string) => Effect.Effect<Option.Option<Stored>>
  /** How long a link lives, in milliseconds. */
  readonly ttlMillis: number
}

/** @category services */
export class ImageLinks extends Context.Service<ImageLinks, ImageLinksShape>()("@peel/gateway/openai/ImageLinks") {}

/** How long a link lives by default: one hour. @category defaults */
export const defaultTtlMillis = 60 * 60 * 1000
/** Bytes kept at most by default: 256 MB. @category defaults */
export const defaultMaxBytes = 256 * 1024 * 1024

/** A token: 32 random bytes as base64url (43 characters). @category tokens */
export const newToken = (): string => randomBytes(32).toString("base64url")

const tokenPattern = /^[A-Za-z0-9_-]{43}$/

/** The file extension a link carries for a MIME type. @category paths */
export const extensionOf = (mimeType: string): string =>
  mimeType === "image/jpeg" ? "jpg" : mimeType === "image/webp" ? "webp" : "png"

/** The path an image is served at. @category paths */
export const pathOf = (token: string, mimeType: string): string => `/v1/files/images/${token}.${extensionOf(mimeType)}`

/** The token in a served path's last segment (`TOKEN.png`), if it has the shape of one. @category paths */
export const tokenOf = (segment: string): string | undefined => {
  const token = segment.replace(/\.(png|jpg|webp)$/, "")
  return tokenPattern.test(token) ? token : undefined
}

/** One process's links, in memory. @category constructors */
export const makeMemory = (
  options: { readonly ttlMillis?: number | undefined; readonly maxBytes?: number | undefined } = {},
): Effect.Effect<ImageLinksShape> =>
  Effect.sync(() => {
    const ttlMillis = options.ttlMillis ?? defaultTtlMillis
    const maxBytes = options.maxBytes ?? defaultMaxBytes
    // Insertion order is expiry order: every link lives the same ttl.
    const kept = new Map<string, Stored>()
    let bytes = 0
    const drop = (token: string, stored: Stored) => {
      kept.delete(token)
      bytes -= stored.bytes.byteLength
    }
    const sweep = (now: number, room: number) => {
      for (const [token, stored] of kept) {
        if (stored.expiresAt > now && bytes + room <= maxBytes) return
        drop(token, stored)
      }
    }
    return {
      ttlMillis,
      put: (image) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          sweep(now, image.bytes.byteLength)
          const token = newToken()
          kept.set(token, { bytes: image.bytes, mimeType: image.mimeType, expiresAt: now + ttlMillis })
          bytes += image.bytes.byteLength
          return token
        }),
      get: (token) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          sweep(now, 0)
          return Option.fromUndefinedOr(kept.get(token))
        }),
    }
  })

/** @category layers */
export const layerMemory = (
  options: { readonly ttlMillis?: number | undefined; readonly maxBytes?: number | undefined } = {},
): Layer.Layer<ImageLinks> => Layer.effect(ImageLinks, makeMemory(options))
