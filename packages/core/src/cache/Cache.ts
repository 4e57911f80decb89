/**
 * The image cache behind the `cache` stage: a key that names what shapes the image, stores that hold
 * images by key, and the envelope that lets any byte store prove an entry is whole before it is served.
 *
 * - {@link keyOf}: the request identity (`plan/Identity.ts`, which lists what every derived key holds)
 *   with the model replaced by its **family** (aliases and retired ids of one model share entries): the
 *   whitespace-normalised prompt, size, aspect ratio, reference images by content, seed, provider options,
 *   image-only and variant. Nothing else (id, use, priority, the serving channel) changes the image, so
 *   nothing else is in the key.
 * - {@link ImageStore}: what the stage reads and writes. Two ship: {@link memoryStore} (LRU with an
 *   entry and a byte bound) and {@link fileStore} (content-addressed files, atomic writes, bounded with
 *   eviction, safe with several processes sharing the folder). Any `effect/persistence` `KeyValueStore`
 *   (Redis, SQL, browser storage) becomes an image store through {@link fromKeyValueStore}, which adds
 *   the integrity envelope: the file store is exactly that over a file-backed `KeyValueStore`.
 * - {@link make}: TTL (on the `Clock`, so `TestClock` drives it) and counters over a store.
 *
 * @since 0.3.0
 */
import { createHash } from "node:crypto"
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync } from "node:fs"
import { join } from "node:path"
import { type AspectRatio, findModel, type Size } from "@peel/contract/Catalog"
import type { ChannelRequest } from "@peel/contract/Channel"
import { type ImageInfo, inspectImage } from "@peel/contract/Image"
import { Clock, Effect, Result, Schema } from "effect"
import { KeyValueStore } from "effect/persistence"
import * as Files from "../internal/Files.ts"
import { hashParts, partsOf } from "../internal/identity.ts"

/** One cached image and what made it. @category model */
export interface Entry {
  readonly bytes: Uint8Array
  readonly info: ImageInfo
  /** The channel and model that made the image (a hit reports them). */
  readonly channel: string
  readonly model: string
  readonly size: Size
  readonly aspectRatio: AspectRatio
  /** Text the model returned beside the image. */
  readonly text?: string | undefined
  /** Epoch milliseconds when the image was stored (TTL runs from here). */
  readonly storedAt: number
}

/**
 * Where cached images live. Reads that find nothing usable (missing, corrupt, unreadable) are misses;
 * writes that fail are dropped (the image is still returned): a cache never fails a request.
 *
 * @category model
 */
export interface ImageStore {
  readonly kind: string
  readonly get: (key: string) => Effect.Effect<Entry | undefined>
  readonly set: (key: string, entry: Entry) => Effect.Effect<void>
  readonly remove: (key: string) => Effect.Effect<void>
  /** Entries found corrupt and dropped since the store was made. */
  readonly corrupt: () => number
}

// ---------------------------------------------------------------------------------------------------
// key

const sha256 = (data: Uint8Array | string): string => createHash("sha256").update(data).digest("hex")

/**
 * The cache key of a request: the request identity's parts (`plan/Identity.ts`, which lists what every
 * derived key holds) with the model replaced by its **family** — a model's aliases and retired ids share
 * entries — hashed under its own tag, `peel-cache/1` (keys written by earlier versions stay valid).
 *
 * @category key
 */
export const keyOf = (request: ChannelRequest): string =>
  hashParts("peel-cache/1", partsOf(request, findModel(request.model)?.family ?? request.model))

// ---------------------------------------------------------------------------------------------------
// the integrity envelope: one JSON header line, then the image bytes

const Header = Schema.Struct({
  v: Schema.Literal(1),
  key: Schema.String,
  byteLength: Schema.Number,
  sha256: Schema.String,
  channel: Schema.String,
  model: Schema.String,
  size: Schema.String,
  aspectRatio: Schema.String,
  storedAt: Schema.Number,
  text: Schema.optional(Schema.String),
})
const decodeHeader = Schema.decodeUnknownResult(Schema.fromJsonString(Header))
const maxHeaderBytes = 64 * 1024

/** An entry as bytes: a header line (key, length, SHA-256 of the image, provenance) and the image. @category envelope */
export const encode = (key: string, entry: Entry): Uint8Array => {
  const header = JSON.stringify({
    v: 1,
    key,
    byteLength: entry.bytes.length,
    sha256: sha256(entry.bytes),
    channel: entry.channel,
    model: entry.model,
    size: entry.size,
    aspectRatio: entry.aspectRatio,
    storedAt: entry.storedAt,
    ...(entry.text === undefined ? {} : { text: entry.text }),
  })
  return Buffer.concat([Buffer.from(`${header}\n`, "utf8"), entry.bytes])
}

/**
 * Bytes back to an entry, or why they cannot be trusted: a missing or unreadable header, another key,
 * a wrong length (truncated), a different SHA-256 (bit rot, a torn write) or bytes that are not a whole
 * image.
 *
 * @category envelope
 */
export const decode = (key: string, data: Uint8Array): Result.Result<Entry, string> => {
  const newline = data.subarray(0, maxHeaderBytes).indexOf(10)
  if (newline < 0) return Result.fail("no header")
  const header = decodeHeader(Buffer.from(data.buffer, data.byteOffset, newline).toString("utf8"))
  if (Result.isFailure(header)) return Result.fail("unreadable header")
  const found = header.success
  if (found.key !== key) return Result.fail(`holds key ${found.key.slice(0, 12)}…`)
  const bytes = data.subarray(newline + 1)
  if (bytes.length !== found.byteLength)
    return Result.fail(`image is ${bytes.length} bytes, the header says ${found.byteLength}`)
  if (sha256(bytes) !== found.sha256) return Result.fail("image bytes do not match their SHA-256")
  const info = inspectImage(bytes)
  if (info === undefined) return Result.fail("not a whole image")
  return Result.succeed({
    bytes,
    info,
    channel: found.channel,
    model: found.model,
    size: found.size as Size,
    aspectRatio: found.aspectRatio as AspectRatio,
    storedAt: found.storedAt,
    ...(found.text === undefined ? {} : { text: found.text }),
  })
}

/**
 * Any `KeyValueStore` as an image store: entries are written in the integrity envelope and checked on
 * every read; a corrupt entry is removed and reported as a miss (so the request is made again and the
 * entry rewritten). Store errors are misses on read and ignored on write.
 *
 * @category stores
 */
export const fromKeyValueStore = (store: KeyValueStore.KeyValueStore, kind = "key-value"): ImageStore => {
  let corrupt = 0
  const remove = (key: string) => Effect.ignore(store.remove(key))
  return {
    kind,
    get: (key) =>
      store.getUint8Array(key).pipe(
        Effect.catch(() => Effect.undefined),
        Effect.flatMap((data): Effect.Effect<Entry | undefined> => {
          if (data === undefined) return Effect.undefined
          const entry = decode(key, data)
          if (Result.isSuccess(entry)) return Effect.succeed(entry.success)
          corrupt += 1
          return Effect.as(remove(key), undefined)
        }),
      ),
    set: (key, entry) => Effect.ignore(store.set(key, encode(key, entry))),
    remove,
    corrupt: () => corrupt,
  }
}

// ---------------------------------------------------------------------------------------------------
// memory

/** Bounds of the memory store. @category stores */
export interface MemoryOptions {
  readonly maxBytes: number
  readonly maxEntries: number
}

/**
 * A least-recently-used store in this process, bounded by entries and by image bytes; the oldest-used
 * entries go first. An image bigger than the whole byte bound is not kept.
 *
 * @category stores
 */
export const memoryStore = (options: MemoryOptions): ImageStore & { readonly bytes: () => number } => {
  const entries = new Map<string, Entry>()
  let bytes = 0
  const drop = (key: string) => {
    const entry = entries.get(key)
    if (entry === undefined) return
    entries.delete(key)
    bytes -= entry.bytes.length
  }
  return {
    kind: "memory",
    get: (key) =>
      Effect.sync(() => {
        const entry = entries.get(key)
        if (entry === undefined) return undefined
        entries.delete(key)
        entries.set(key, entry)
        return entry
      }),
    set: (key, entry) =>
      Effect.sync(() => {
        drop(key)
        if (entry.bytes.length > options.maxBytes) return
        entries.set(key, entry)
        bytes += entry.bytes.length
        for (const oldest of entries.keys()) {
          if (bytes <= options.maxBytes && entries.size <= options.maxEntries) break
          drop(oldest)
        }
      }),
    remove: (key) => Effect.sync(() => drop(key)),
    corrupt: () => 0,
    bytes: () => bytes,
  }
}

// ---------------------------------------------------------------------------------------------------
// files

/** Bounds of the file store. @category stores */
export interface FileOptions {
  readonly directory: string
  /** Total bytes of entries kept; the least recently used go first once it is passed. */
  readonly maxBytes: number
  /** Rescan the folder after this many writes (other processes write too). Default 256. */
  readonly rescanEvery?: number
}

const keyPattern = /^[0-9a-f]{64}$/
const tmpSuffix = Files.temporarySuffix
const staleTmpMillis = 60 * 60 * 1000

const codeOf = (error: unknown): string | undefined => (error as { code?: unknown } | null)?.code as string | undefined

const kvError = (method: string, key: string | undefined, cause: unknown) =>
  new KeyValueStore.KeyValueStoreError({
    method,
    ...(key === undefined ? {} : { key }),
    message: `file cache: ${method} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause,
  })

interface Scanned {
  readonly path: string
  readonly key: string
  readonly bytes: number
  readonly usedAt: number
}

/**
 * A file-backed `KeyValueStore` for cache entries. Content-addressed: an entry's file is
 * `DIR/ab/abcdef….entry`, named by its key (a SHA-256). Writes go to a temporary file in the same folder
 * and are renamed into place, so a reader — in this process or another — sees the old entry or the new
 * one, never half of one. A read touches the file's time (least-recently-used eviction across
 * processes). When the folder passes `maxBytes`, the least recently used entries are deleted until it
 * is back under 90% of it; each process keeps a running total and rescans the folder every
 * `rescanEvery` writes to count what the others wrote. A file another process deleted is simply a miss.
 *
 * @category stores
 */
export const fileKeyValueStore = (
  options: FileOptions,
): KeyValueStore.KeyValueStore & { readonly scan: () => number } => {
  const directory = options.directory
  mkdirSync(directory, { recursive: true })
  const rescanEvery = options.rescanEvery ?? 256
  const pathOf = (key: string) => join(directory, key.slice(0, 2), `${key}.entry`)

  const scan = (): Array<Scanned> => {
    const found: Array<Scanned> = []
    const now = Date.now()
    for (const shard of readdirSync(directory)) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue
      let names: Array<string>
      try {
        names = readdirSync(join(directory, shard))
      } catch {
        continue
      }
      for (const name of names) {
        const path = join(directory, shard, name)
        try {
          const stat = statSync(path)
          if (name.endsWith(tmpSuffix)) {
            // A temporary file a crashed writer left behind.
            if (now - stat.mtimeMs > staleTmpMillis) rmSync(path, { force: true })
            continue
          }
          if (!name.endsWith(".entry")) continue
          found.push({ path, key: name.slice(0, -".entry".length), bytes: stat.size, usedAt: stat.mtimeMs })
        } catch {
          // deleted by another process meanwhile
        }
      }
    }
    return found
  }

  let total = scan().reduce((sum, entry) => sum + entry.bytes, 0)
  let writes = 0

  const evict = () => {
    const entries = scan().sort((left, right) => left.usedAt - right.usedAt)
    total = entries.reduce((sum, entry) => sum + entry.bytes, 0)
    if (total <= options.maxBytes) return
    const target = options.maxBytes * 0.9
    for (const entry of entries) {
      if (total <= target) break
      rmSync(entry.path, { force: true })
      total -= entry.bytes
    }
  }

  const checked = <A>(
    method: string,
    key: string,
    use: (path: string) => A,
  ): Effect.Effect<A, KeyValueStore.KeyValueStoreError> =>
    keyPattern.test(key)
      ? Effect.try({ try: () => use(pathOf(key)), catch: (cause) => kvError(method, key, cause) })
      : Effect.fail(kvError(method, key, new Error("cache keys are SHA-256 hex digests")))

  const read = (path: string): Uint8Array | undefined => {
    try {
      const data = readFileSync(path)
      const now = new Date()
      try {
        utimesSync(path, now, now)
      } catch {
        // gone or read-only: reading is what matters
      }
      return data
    } catch (error) {
      if (codeOf(error) === "ENOENT") return undefined
      throw error
    }
  }

  const store = KeyValueStore.make({
    get: (key) =>
      Effect.map(checked("get", key, read), (data) =>
        data === undefined ? undefined : Buffer.from(data).toString("utf8"),
      ),
    getUint8Array: (key) => checked("getUint8Array", key, read),
    set: (key, value) => {
      const data = typeof value === "string" ? Buffer.from(value, "utf8") : value
      return checked("set", key, (path) => {
        mkdirSync(join(directory, key.slice(0, 2)), { recursive: true })
        return path
      }).pipe(
        Effect.flatMap((path) =>
          Files.writeAtomically(path, data).pipe(
            Effect.provide(Files.layerNode),
            Effect.mapError((cause) => kvError("set", key, cause)),
          ),
        ),
        Effect.andThen(
          checked("set", key, () => {
            total += data.length
            writes += 1
            if (total > options.maxBytes || writes % rescanEvery === 0) evict()
          }),
        ),
      )
    },
    remove: (key) =>
      checked("remove", key, (path) => {
        try {
          const size = statSync(path).size
          unlinkSync(path)
          total -= size
        } catch (error) {
          if (codeOf(error) !== "ENOENT") throw error
        }
      }),
    clear: Effect.try({
      try: () => {
        for (const entry of scan()) rmSync(entry.path, { force: true })
        total = 0
      },
      catch: (cause) => kvError("clear", undefined, cause),
    }),
    size: Effect.try({ try: () => scan().length, catch: (cause) => kvError("size", undefined, cause) }),
    keys: Effect.try({
      try: () => scan().map((entry) => entry.key),
      catch: (cause) => kvError("keys", undefined, cause),
    }),
  })
  return Object.assign(store, {
    scan: () => {
      evict()
      return total
    },
  })
}

/**
 * The file store: {@link fileKeyValueStore} with the integrity envelope ({@link fromKeyValueStore}).
 *
 * @category stores
 */
export const fileStore = (options: FileOptions): ImageStore => fromKeyValueStore(fileKeyValueStore(options), "file")

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
