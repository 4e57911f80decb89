/**
 * The image cache's store as a state service: where cached images live and who is making one right now.
 * A `cache` stage asks {@link ImageCache} for the store its configuration names ({@link StoreSpec}:
 * `memory` or `file`); the runner's state Layers decide what each name opens. {@link layerMemory} (in
 * `State.layerMemory`) opens them as Peel always has: `memory` is an LRU in this process, `file` a folder
 * of content-addressed entries that processes share. A network Layer (Redis, a SQL table) answers the same
 * names with its shared store, without touching the stage.
 *
 * An {@link ImageStore} is get/set/remove of whole entries, plus **leases** for coalescing across
 * processes: before making an image, the one that will make it {@link ImageStore.claim}s its key for a
 * while (renewing while it works); another process finding the lease held waits for the entry to appear
 * or for the lease to expire, then claims it itself. So a process that dies mid-call delays the others by
 * at most one lease, and never blocks them. Within one process the stage coalesces identical requests
 * before they reach the store.
 *
 * - {@link memoryStore}: LRU bounded by entries and bytes; leases in a map.
 * - {@link fileStore}: {@link fileKeyValueStore} (atomic writes, bounded with eviction) with the integrity
 *   envelope ({@link fromKeyValueStore}) and {@link fileLeases} (one exclusive-create file per key).
 *
 * @since 0.4.0
 */
import { createHash, randomUUID } from "node:crypto"
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { AspectRatio, Size } from "@peel/contract/Catalog"
import { type ImageInfo, inspectImage } from "@peel/contract/Image"
import { Clock, Context, Effect, Layer, Result, Schema, type Scope } from "effect"
import { KeyValueStore } from "effect/persistence"
import * as Files from "../internal/Files.ts"

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
export interface ImageStore extends Leases {
  readonly kind: string
  readonly get: (key: string) => Effect.Effect<Entry | undefined>
  readonly set: (key: string, entry: Entry) => Effect.Effect<void>
  readonly remove: (key: string) => Effect.Effect<void>
  /** Entries found corrupt and dropped since the store was made. */
  readonly corrupt: () => number
}

/** A claim on a key: who is making its image, until when (epoch ms). @category model */
export interface Lease {
  readonly key: string
  readonly owner: string
  readonly expiresAt: number
}

/**
 * Leases on keys, for coalescing: at most one live lease per key. Each operation is one atomic step of
 * the store; time comes from the `Clock`.
 *
 * @category model
 */
export interface Leases {
  /** Claim `key` for `leaseMillis`: the lease, or undefined while another live lease holds it. */
  readonly claim: (key: string, leaseMillis: number) => Effect.Effect<Lease | undefined>
  /** Extend a lease still held; undefined when it was lost (expired and claimed by another). */
  readonly renew: (lease: Lease, leaseMillis: number) => Effect.Effect<Lease | undefined>
  /** Give a lease up (if still held), so waiters go on at once. */
  readonly release: (lease: Lease) => Effect.Effect<void>
}

/** Leases in this process's memory. @category leases */
export const memoryLeases = (): Leases => {
  const held = new Map<string, Lease>()
  const live = (key: string, now: number) => {
    const lease = held.get(key)
    return lease !== undefined && lease.expiresAt > now ? lease : undefined
  }
  return {
    claim: (key, leaseMillis) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        if (live(key, now) !== undefined) return undefined
        const lease: Lease = { key, owner: randomUUID(), expiresAt: now + leaseMillis }
        held.set(key, lease)
        return lease
      }),
    renew: (lease, leaseMillis) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const current = live(lease.key, now)
        if (current !== undefined && current.owner !== lease.owner) return undefined
        const renewed: Lease = { ...lease, expiresAt: now + leaseMillis }
        held.set(lease.key, renewed)
        return renewed
      }),
    release: (lease) =>
      Effect.sync(() => {
        if (held.get(lease.key)?.owner === lease.owner) held.delete(lease.key)
      }),
  }
}

/**
 * Leases as files, shared by the processes using one folder: `DIR/<key>.lease` holds the owner and the
 * expiry, created with an exclusive create (one claimant wins). An expired lease file is removed and the
 * claim tried again. Two processes stealing one expired lease at the same instant may both make the image
 * once — a duplicate call, never a wrong image.
 *
 * @category leases
 */
export const fileLeases = (directory: string): Leases => {
  mkdirSync(directory, { recursive: true })
  const pathOf = (key: string) => join(directory, `${key}.lease`)
  const read = (key: string): Lease | undefined => {
    try {
      const value = JSON.parse(readFileSync(pathOf(key), "utf8")) as { owner?: unknown; expiresAt?: unknown }
      return typeof value.owner === "string" && typeof value.expiresAt === "number"
        ? { key, owner: value.owner, expiresAt: value.expiresAt }
        : { key, owner: "", expiresAt: 0 }
    } catch (error) {
      // missing: no lease; unreadable (a torn write): expired
      return codeOf(error) === "ENOENT" ? undefined : { key, owner: "", expiresAt: 0 }
    }
  }
  const create = (lease: Lease): boolean => {
    try {
      writeFileSync(pathOf(lease.key), JSON.stringify({ owner: lease.owner, expiresAt: lease.expiresAt }), {
        flag: "wx",
      })
      return true
    } catch (error) {
      if (codeOf(error) === "EEXIST") return false
      throw error
    }
  }
  const attempt = <A>(body: () => A, otherwise: A): Effect.Effect<A> =>
    Effect.sync(() => {
      try {
        return body()
      } catch {
        return otherwise
      }
    })
  return {
    claim: (key, leaseMillis) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        attempt(
          (): Lease | undefined => {
            const lease: Lease = { key, owner: randomUUID(), expiresAt: now + leaseMillis }
            if (create(lease)) return lease
            const current = read(key)
            if (current !== undefined && current.expiresAt > now) return undefined
            rmSync(pathOf(key), { force: true })
            return create(lease) ? lease : undefined
            // a folder Peel cannot write leases in: claim without one (at worst a duplicate call)
          },
          { key, owner: "", expiresAt: now + leaseMillis },
        ),
      ),
    renew: (lease, leaseMillis) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        attempt((): Lease | undefined => {
          if (read(lease.key)?.owner !== lease.owner) return undefined
          const renewed: Lease = { ...lease, expiresAt: now + leaseMillis }
          writeFileSync(pathOf(lease.key), JSON.stringify({ owner: lease.owner, expiresAt: renewed.expiresAt }))
          return renewed
        }, undefined),
      ),
    release: (lease) =>
      attempt(() => {
        if (lease.owner !== "" && read(lease.key)?.owner === lease.owner) unlinkSync(pathOf(lease.key))
      }, undefined),
  }
}

const sha256 = (data: Uint8Array | string): string => createHash("sha256").update(data).digest("hex")

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
 * entry rewritten). Store errors are misses on read and ignored on write. A `KeyValueStore` has no
 * compare-and-set, so the leases come beside it (this process's by default; {@link fileLeases} for a
 * folder).
 *
 * @category stores
 */
export const fromKeyValueStore = (
  store: KeyValueStore.KeyValueStore,
  kind = "key-value",
  leases: Leases = memoryLeases(),
): ImageStore => {
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
    ...leases,
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
  const leases = memoryLeases()
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
    ...leases,
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
export const fileStore = (options: FileOptions): ImageStore =>
  fromKeyValueStore(fileKeyValueStore(options), "file", fileLeases(join(options.directory, "leases")))

// ---------------------------------------------------------------------------------------------------
// the service

/** The store a `cache` stage's configuration names. @category model */
export type StoreSpec =
  | {
      readonly store: "memory"
      readonly maxBytes: number
      readonly maxEntries: number
      /** How long an entry is kept (a shared store expires it then; the cache stage's `ttl`). */
      readonly ttlMillis?: number | undefined
    }
  | { readonly store: "file"; readonly directory: string; readonly maxBytes: number }

/** @category model */
export interface ImageCacheShape {
  /**
   * Open the store `spec` names, for the Scope's life; fails with the reason when it cannot (a folder
   * that cannot be created). Each call opens its own: two stages naming one folder share it through
   * the folder, as two processes do.
   */
  readonly open: (spec: StoreSpec) => Effect.Effect<ImageStore, string, Scope.Scope>
}

/** @category services */
export class ImageCache extends Context.Service<ImageCache, ImageCacheShape>()("@peel/core/state/ImageCache") {}

/** Opens `memory` as an LRU in this process and `file` as a folder processes share. @category constructors */
export const openLocal: ImageCacheShape["open"] = (spec) =>
  Effect.try({
    try: () =>
      spec.store === "file"
        ? fileStore({ directory: spec.directory, maxBytes: spec.maxBytes })
        : memoryStore({ maxBytes: spec.maxBytes, maxEntries: spec.maxEntries }),
    catch: (error) => (error instanceof Error ? error.message : String(error)),
  })

/** The stores as Peel has always opened them: nothing shared beyond a `file` folder. @category layers */
export const layerMemory: Layer.Layer<ImageCache> = Layer.succeed(ImageCache, { open: openLocal })
