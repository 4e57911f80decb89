/**
 * The image cache behind the `cache` stage: a key that names what shapes the image, stores that hold
 * images by key, and the envelope that lets any byte store prove an entry is whole before it is served.
 *
 * - {@link keyOf}: the request identity (`plan/Identity.ts`, which lists what every derived key holds)
 *   with the model replaced by its **family** (aliases and retired ids of one model share entries): the
 *   whitespace-normalised prompt, size, aspect ratio, reference images by content, seed, provider options,
 *   image-only and variant. Nothing else (id, use, priority, the serving channel) changes the image, so
 *   nothing else is in the key.
 * - The stores (`ImageStore`, `memoryStore`, `fileStore`, `fromKeyValueStore`, the envelope) are the
 *   image cache state service's now, in `state/ImageCache.ts`, with leases for coalescing across
 *   processes; they are re-exported here for one release.
 * - {@link make}: TTL (on the `Clock`, so `TestClock` drives it) and counters over a store.
 *
 * @since 0.3.0
 */
import { findModel } from "@peel/contract/Catalog"
import type { ChannelRequest } from "@peel/contract/Channel"
import { Clock, Effect } from "effect"
import { hashParts, partsOf } from "../internal/identity.ts"
import type { Entry, ImageStore } from "../state/ImageCache.ts"

// ---------------------------------------------------------------------------------------------------
// key

/**
 * The cache key of a request: the request identity's parts (`plan/Identity.ts`, which lists what every
 * derived key holds) with the model replaced by its **family** — a model's aliases and retired ids share
 * entries — hashed under its own tag, `peel-cache/1` (keys written by earlier versions stay valid).
 *
 * @category key
 */
export const keyOf = (request: ChannelRequest): string =>
  hashParts("peel-cache/1", partsOf(request, findModel(request.model)?.family ?? request.model))

/** @deprecated moved to `state/ImageCache.ts` (the image cache's store service); re-exported for one release. */
export {
  decode,
  type Entry,
  encode,
  type FileOptions,
  fileKeyValueStore,
  fileStore,
  fromKeyValueStore,
  type ImageStore,
  type MemoryOptions,
  memoryStore,
} from "../state/ImageCache.ts"

// ---------------------------------------------------------------------------------------------------
// TTL and counters

/** Counters of one cache. @category model */
export interface Stats {
  hits: number
  misses: number
  /** Requests that waited for an identical request already in flight instead of calling. */
  coalesced: number
  writes: number
  expired: number
}

/** A store with a time to live. @category model */
export interface ImageCache {
  readonly store: ImageStore
  readonly ttlMillis: number
  readonly stats: Stats
  /** The entry for `key` if it is there, whole and younger than the TTL (an expired one is removed). */
  readonly read: (key: string) => Effect.Effect<Entry | undefined>
  readonly write: (key: string, entry: Omit<Entry, "storedAt">) => Effect.Effect<void>
}

/** TTL and counters over a store; time comes from the `Clock`. @category constructors */
export const make = (store: ImageStore, ttlMillis: number): ImageCache => {
  const stats: Stats = { hits: 0, misses: 0, coalesced: 0, writes: 0, expired: 0 }
  return {
    store,
    ttlMillis,
    stats,
    read: (key) =>
      Effect.flatMap(store.get(key), (entry): Effect.Effect<Entry | undefined> => {
        if (entry === undefined) return Effect.undefined
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (now - entry.storedAt < ttlMillis) return Effect.succeed(entry)
          stats.expired += 1
          return Effect.as(store.remove(key), undefined)
        })
      }),
    write: (key, entry) =>
      Effect.flatMap(Clock.currentTimeMillis, (storedAt) => {
        stats.writes += 1
        return store.set(key, { ...entry, storedAt })
      }),
  }
}
