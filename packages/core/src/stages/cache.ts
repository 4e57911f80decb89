/**
 * `cache`: request-level. A request whose image is already known (same key: normalised prompt, model
 * family, size, aspect ratio — see {@link Cache.keyOf}) is answered from the store at $0, marked
 * `cached: true`, and recorded in the journal as an attempt with `cached: true` and `costUsd: 0`.
 *
 * **Coalescing.** Identical requests in flight at the same time make one upstream call: in this process the
 * first starts it (through Effect's `Cache`, whose pending lookups are shared), the others wait for it.
 * Whoever takes the answer first carries its attempts and cost in its own journal; the rest are hits. If
 * every waiter goes away, the call is interrupted (its HTTP request aborted). A failure is shared by the
 * requests that waited for it but never stored. Across processes sharing a store, the one making an image
 * holds a **lease** on its key (30 s, renewed while the call runs, given up when it ends); another process
 * waits for the entry or for the lease to run out, then claims it — a process that died mid-call delays
 * the others by one lease at most.
 *
 * **Where the store comes from.** The stage asks the runner's `ImageCache` state service to open the store
 * its configuration names (`store: memory` with its bounds, `store: file` with its folder); the state
 * Layers decide what each name opens. `State.layerMemory` opens them as always (an LRU in this process; a
 * folder processes share); a network Layer can answer the same names with a shared store.
 *
 * **What is stored.** Only a real image of what the plan asked for: never a placeholder, never a
 * failure, never an image a fallback made with another model family or at another size or ratio.
 *
 * @since 0.3.0
 */
import { resolve } from "node:path"
import type { Attempt } from "@peel/contract/Attempt"
import { findModel } from "@peel/contract/Catalog"
import { ConfigError, ConfigProblem, type PipelineError } from "@peel/contract/Errors"
import * as Units from "@peel/contract/Units"
import { Clock, Effect, Cache as EffectCache, Equal, Exit, Fiber, Hash, Schema } from "effect"
import * as Cache from "../cache/Cache.ts"
import { Journal, type JournalShape, make as makeJournal } from "../engine/AttemptJournal.ts"
import type { Generated, Handler, Middleware, StageDefinition } from "../engine/Stage.ts"
import type { Plan } from "../plan/Plan.ts"
import * as ImageCache from "../state/ImageCache.ts"

/** @deprecated use `Units.parseBytes` from `@peel/contract` (one units parser); kept for one release. @category parsing */
export const parseBytes = Units.parseBytes

/** Defaults. @category defaults */
export const defaults = {
  ttlMillis: 60 * 60 * 1000,
  memoryMaxBytes: 256 * 1024 * 1024,
  memoryMaxEntries: 10_000,
  fileMaxBytes: 2 * 1024 * 1024 * 1024,
} as const

const Config = Schema.Struct({
  store: Schema.optional(Schema.Literals(["memory", "file"])).annotate({
    description:
      "memory: this process only, least recently used first out; file: a folder of content-addressed entries that several processes may share (default memory)",
  }),
  path: Schema.optional(Schema.String).annotate({
    description: "The cache folder for store: file, relative to the pipeline file (e.g. ../.peel/cache)",
  }),
  ttl: Schema.optional(Units.DurationMillis).annotate({
    description: "How long an image is served from the cache after it was made (default 1h)",
  }),
  maxSize: Schema.optional(Units.ByteSizeInput).annotate({
    description: "Most image bytes kept; least recently used entries are evicted (default 256MB memory, 2GB file)",
  }),
  maxEntries: Schema.optional(Schema.Int.check(Schema.isGreaterThan(0))).annotate({
    description: "Most images kept by store: memory (default 10000)",
  }),
}).annotate({
  description:
    "Answer repeated requests (same prompt, model family, size and aspect ratio) from a cache at $0; identical requests in flight share one call",
  examples: [{ store: "file", path: "../.peel/cache" }],
})

/** The cache stage's configuration. @category model */
export type CacheConfig = typeof Config.Type

/** The TTL a decoded `cache` block configures (for estimates: does a repeat within an hour hit?). @category config */
export const ttlOf = (config: unknown): number => (config as CacheConfig).ttl ?? defaults.ttlMillis

/** Whether a made image may be stored under the plan's key. @category policy */
export const cacheable = (plan: Plan, done: Generated): boolean =>
  !done.placeholder &&
  !done.cached &&
  done.size === plan.size &&
  done.aspectRatio === plan.aspectRatio &&
  (findModel(done.model)?.family ?? done.model) === (findModel(plan.model)?.family ?? plan.model)

/**
 * How long a lease on a key holds before others may claim it (renewed every third of it while the call
 * runs), and how often a request waiting on another process's lease looks again.
 *
 * @category model
 */
export interface Leasing {
  readonly leaseMillis: number
  readonly pollMillis: number
}

/** A 30 s lease, looked at every 250 ms. @category defaults */
export const defaultLeasing: Leasing = { leaseMillis: 30_000, pollMillis: 250 }

/** A pending lookup: identified by the cache key alone, carrying what the first request needs to make it. */
class Pending implements Equal.Equal {
  readonly key: string
  readonly plan: Plan
  readonly next: Handler
  constructor(key: string, plan: Plan, next: Handler) {
    this.key = key
    this.plan = plan
    this.next = next
  }
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof Pending && that.key === this.key
  }
  [Hash.symbol](): number {
    return Hash.string(this.key)
  }
}

/** What a shared lookup produced: an entry found in the store, or the outcome of the one call made. */
type Shared =
  | { readonly _tag: "Stored"; readonly entry: Cache.Entry }
  | {
      readonly _tag: "Made"
      readonly exit: Exit.Exit<Generated, PipelineError>
      readonly attempts: ReadonlyArray<Attempt>
      claimed: boolean
    }

const fromEntry = (entry: Cache.Entry): Generated => ({
  channel: entry.channel,
  model: entry.model,
  size: entry.size,
  aspectRatio: entry.aspectRatio,
  image: {
    bytes: entry.bytes,
    mimeType: entry.info.mimeType,
    ...(entry.text === undefined ? {} : { text: entry.text }),
  },
  info: entry.info,
  cached: true,
  placeholder: false,
})

const recordHit = (journal: JournalShape, done: Generated, startedAt: number): Effect.Effect<Generated> =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const index = journal.record({
      channel: done.channel,
      model: done.model,
      size: done.size,
      startedAt,
      latencyMs: now - startedAt,
      outcome: "ok",
      costUsd: 0,
      cached: true,
    })
    journal.markWon(index)
    return { ...done, cached: true }
  })

/**
 * The cache as middleware over a built {@link Cache.ImageCache}. Exposed for tests and embedders that
 * bring their own store.
 *
 * @category constructors
 */
export const middleware = Effect.fnUntraced(function* (cache: Cache.ImageCache, leasing: Leasing = defaultLeasing) {
  const inFlight = yield* EffectCache.make<Pending, Shared>({
    capacity: Number.POSITIVE_INFINITY,
    // Kept only while pending: the store holds finished images.
    timeToLive: 0,
    lookup: (pending) =>
      Effect.gen(function* () {
        const stored = yield* cache.read(pending.key)
        if (stored !== undefined) return { _tag: "Stored", entry: stored } as const
        // Another process sharing the store may be making it: claim the key's lease, or wait for the entry
        // or for the lease to run out, then claim it.
        let lease = yield* cache.store.claim(pending.key, leasing.leaseMillis)
        while (lease === undefined) {
          yield* Effect.sleep(leasing.pollMillis)
          const found = yield* cache.read(pending.key)
          if (found !== undefined) return { _tag: "Stored", entry: found } as const
          lease = yield* cache.store.claim(pending.key, leasing.leaseMillis)
        }
        const held = lease
        cache.stats.misses += 1
        const journal = makeJournal(yield* Clock.currentTimeMillis)
        // Renewed while the call runs; given up when it ends (or is interrupted), so waiters go on at once.
        const renewing = yield* Effect.forkChild(
          Effect.forever(
            Effect.sleep(leasing.leaseMillis / 3).pipe(Effect.andThen(cache.store.renew(held, leasing.leaseMillis))),
          ),
        )
        const exit = yield* Effect.exit(pending.next(pending.plan).pipe(Effect.provideService(Journal, journal))).pipe(
          Effect.ensuring(Fiber.interrupt(renewing)),
          Effect.onInterrupt(() => cache.store.release(held)),
        )
        if (Exit.isSuccess(exit) && cacheable(pending.plan, exit.value)) {
          const done = exit.value
          yield* cache.write(pending.key, {
            bytes: done.image.bytes,
            info: done.info,
            channel: done.channel,
            model: done.model,
            size: done.size,
            aspectRatio: done.aspectRatio,
            ...(done.image.text === undefined ? {} : { text: done.image.text }),
          })
        }
        yield* cache.store.release(held)
        return { _tag: "Made", exit, attempts: journal.attempts(), claimed: false } as const
      }),
  })

  const around: Middleware = (next) => (plan) =>
    Effect.gen(function* () {
      const journal = yield* Journal
      const startedAt = yield* Clock.currentTimeMillis
      const key = Cache.keyOf(plan.channelRequest)
      const stored = yield* cache.read(key)
      if (stored !== undefined) {
        cache.stats.hits += 1
        return yield* recordHit(journal, fromEntry(stored), startedAt)
      }
      const shared = yield* EffectCache.get(inFlight, new Pending(key, plan, next))
      if (shared._tag === "Stored") {
        cache.stats.hits += 1
        return yield* recordHit(journal, fromEntry(shared.entry), startedAt)
      }
      if (!shared.claimed) {
        // The request that takes the answer first carries the calls made for it and what they cost.
        shared.claimed = true
        for (const attempt of shared.attempts) journal.record(attempt)
        return yield* shared.exit
      }
      cache.stats.coalesced += 1
      if (Exit.isSuccess(shared.exit)) return yield* recordHit(journal, shared.exit.value, startedAt)
      return yield* shared.exit
    })
  return around
})

/** @category stages */
export const cache: StageDefinition<CacheConfig> = {
  key: "cache",
  description: "Answer repeated requests from a cache at $0; identical requests in flight share one call",
  schema: Config,
  check: (config) => [
    ...(config.store === "file" && config.path === undefined
      ? [{ path: ["path"], message: "store: file needs a path (the cache folder)", severity: "error" as const }]
      : []),
    ...(config.store !== "file" && config.path !== undefined
      ? [{ path: ["path"], message: "path is used only by store: file", severity: "warning" as const }]
      : []),
    ...(config.store === "file" && config.maxEntries !== undefined
      ? [{ path: ["maxEntries"], message: "maxEntries is used only by store: memory", severity: "warning" as const }]
      : []),
  ],
  make: (config, context) =>
    Effect.gen(function* () {
      const ttl = config.ttl ?? defaults.ttlMillis
      const directory = resolve(context.pipelineDir, config.path ?? ".peel/cache")
      // The runner's image cache service opens the store this configuration names (see State).
      const caches = yield* ImageCache.ImageCache
      const store = yield* caches
        .open(
          config.store === "file"
            ? { store: "file", directory, maxBytes: Units.bytesOf(config.maxSize, defaults.fileMaxBytes) }
            : {
                store: "memory",
                maxBytes: Units.bytesOf(config.maxSize, defaults.memoryMaxBytes),
                maxEntries: config.maxEntries ?? defaults.memoryMaxEntries,
                ttlMillis: ttl,
              },
        )
        .pipe(
          Effect.mapError(
            (reason) =>
              new ConfigError({
                file: context.pipelineFile,
                problems: [
                  new ConfigProblem({
                    file: context.pipelineFile,
                    line: 1,
                    column: 1,
                    message: `cache: cannot use ${directory}: ${reason}`,
                    severity: "error",
                  }),
                ],
              }),
          ),
        )
      return { around: yield* middleware(Cache.make(store, ttl)) }
    }),
}
