/**
 * The state services over Redis, shared by every worker (CLI runs, gateway replicas, bulk jobs) that
 * names the same server: circuit breakers (`effect/persistence`'s `CircuitBreaker.layerStoreRedis`), rate
 * limits, quota pauses, concurrency slots, the hedge budget, channel statistics, the spend ledger and the
 * image cache with coalescing across processes — each decision one Lua script (`Scripts.ts`).
 *
 * Loaded only when a pipeline or a flag names Redis (`State.layerOf` imports this module dynamically), so
 * nobody else loads a Redis client.
 *
 * **When Redis is unreachable** (refused, dropped, a command slower than `commandTimeoutMillis`), each
 * worker goes on with its own memory state: one warning, the `peel_state_fallbacks_total` counter and
 * the `peel_state_redis_up` gauge; it asks Redis again every second and rejoins (one message) when it
 * answers. Budgets fail closed meanwhile — a reservation cannot be made, so no request starts — unless
 * `failOpen: true`, which reserves against this worker's own ledger. Spend settled while Redis is away is
 * kept and written when it returns. A server error reply (a bug, not an outage) is a defect, never hidden
 * behind the fallback.
 *
 * @since 0.5.0
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Clock, Context, Deferred, Effect, Exit, Layer, Metric, References, Scope } from "effect"
import { CircuitBreaker, Redis } from "effect/persistence"
import { ErrorReply, RESP_TYPES } from "redis"
import * as Breakers from "../Breakers.ts"
import * as ChannelStats from "../ChannelStats.ts"
import * as Concurrency from "../Concurrency.ts"
import * as HedgeBudget from "../HedgeBudget.ts"
import * as ImageCache from "../ImageCache.ts"
import * as QuotaPauses from "../QuotaPauses.ts"
import * as RateLimits from "../RateLimits.ts"
import * as SpendLedger from "../SpendLedger.ts"
import * as Stores from "./Stores.ts"

/** Where the state lives and how an outage is met. @category model */
export interface Options {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  readonly url: string
  /** Prefix of every key (default `peel:`): workers sharing a prefix share state. */
  readonly prefix?: string | undefined
  /** While Redis is unreachable, budgets reserve against this worker's own ledger instead of refusing. */
  readonly failOpen?: boolean | undefined
  /** How long a starting worker waits for Redis before it starts on its own state (default 5000 ms). */
  readonly connectTimeoutMillis?: number | undefined
  /** A command slower than this counts as Redis unreachable (default 2000 ms). */
  readonly commandTimeoutMillis?: number | undefined
  /** How often a worker on its own state asks Redis again (default 1000 ms). */
  readonly probeMillis?: number | undefined
}

/** The state services this module provides (output lookup stays the output folder's). @category model */
export type Services =
  | Breakers.Breakers
  | RateLimits.RateLimits
  | QuotaPauses.QuotaPauses
  | Concurrency.Concurrency
  | HedgeBudget.HedgeBudget
  | ChannelStats.ChannelStats
  | SpendLedger.SpendLedger
  | ImageCache.ImageCache

/** Times a worker fell back to its own state because Redis was unreachable. @category metrics */
export const fallbacks = Metric.counter("peel_state_fallbacks_total", {
  description: "Times a worker fell back to its own memory state because its Redis was unreachable",
})
/** 1 while a worker uses its Redis, 0 while it is on its own state. @category metrics */
export const redisUp = Metric.gauge("peel_state_redis_up", {
  description: "1 while this worker's state is in Redis, 0 while it runs on its own memory state",
})

/** A Redis URL as it may be shown: scheme, host and port, never a password. @category internals */
export const redact = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === "/" ? "" : parsed.pathname}`
  } catch {
    return "(an unreadable Redis URL)"
  }
}

const defaultPrefix = "peel:"

/** How long a worker reuses a channel-statistics summary it read (its own records refresh it at once). */
export const summaryCacheMillis = 1000

/** Server replies that mean "not now" (restarting, a script running) rather than a bug. */
const transientReply = /^(LOADING|BUSY|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/

/** Whether a `RedisError` says the server is out of reach (then: fall back), not that a command is wrong. */
export const isUnreachable = (error: Redis.RedisError): boolean => {
  const cause = error.cause
  return !(cause instanceof ErrorReply) || transientReply.test(cause.message)
}

const bufferMapping = { [RESP_TYPES.BLOB_STRING]: Buffer } as const

/** One connection as the stores use it: every command bounded by the timeout. */
interface Connection {
  readonly redis: Redis.Redis["Service"]
  readonly rateLimits: ReturnType<typeof Stores.rateLimits>
  readonly quotaPauses: ReturnType<typeof Stores.quotaPauses>
  readonly concurrency: ReturnType<typeof Stores.concurrency>
  readonly hedgeBudget: ReturnType<typeof Stores.hedgeBudget>
  readonly channelStats: ReturnType<typeof Stores.channelStats>
  readonly spendLedger: ReturnType<typeof Stores.spendLedger>
  readonly breakers: Breakers.Breakers["Service"]
  readonly image: (ttlMillis: number) => ReturnType<typeof Stores.imageStore>
}

const timedOut = (what: string, millis: number) =>
  new Redis.RedisError({ cause: new Error(`${what}: no answer within ${millis} ms`) })

/** The clock every fiber has unless a test (TestClock) or a program provides another. */
const liveClock = Context.get(Context.empty(), Clock.Clock)

/**
 * A time limit of `millis` of real time for one command: {@link timedOut} when no answer came within it.
 * The answer travels over the network in real time, so the bound is kept on the live clock even where the
 * program runs on another: a test's TestClock, moved ahead while a round trip was still on the wire,
 * timed out commands that a busy machine had merely been slow to answer.
 */
const within =
  (millis: number) =>
  <A>(effect: Effect.Effect<A, Redis.RedisError>, what: string) =>
    Effect.timeoutOrElse(effect, { duration: millis, orElse: () => Effect.fail(timedOut(what, millis)) }).pipe(
      Effect.provideService(Clock.Clock, liveClock),
    )

/** The Redis service with every command bounded in time. */
const bounded = (redis: Redis.Redis["Service"], millis: number): Redis.Redis["Service"] => {
  const limit = within(millis)
  return {
    ...redis,
    send: (command, ...args) => limit(redis.send(command, ...args), command),
    eval:
      (script) =>
      (...params) =>
        limit(redis.eval(script)(...params), "EVALSHA"),
  }
}

/** Build the stores over a connected client (within `scope`). */
const connectionOf = (
  context: Context.Context<Redis.Redis | NodeRedis.NodeRedis>,
  prefix: string,
  commandTimeoutMillis: number,
): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function* () {
    const redis = bounded(Context.get(context, Redis.Redis), commandTimeoutMillis)
    const node = Context.get(context, NodeRedis.NodeRedis)
    const limit = within(commandTimeoutMillis)
    const binary: Stores.Binary = {
      get: (key) =>
        limit(
          node.use((client) => client.sendCommand(["GET", key], { typeMapping: bufferMapping })),
          "GET",
        ).pipe(
          Effect.map((value) =>
            value instanceof Buffer ? new Uint8Array(value.buffer, value.byteOffset, value.length) : undefined,
          ),
        ),
      set: (key, bytes, ttlMillis) =>
        Effect.asVoid(
          limit(
            node.use((client) =>
              client.sendCommand([
                "SET",
                key,
                Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length),
                "PX",
                String(ttlMillis),
              ]),
            ),
            "SET",
          ),
        ),
      remove: (key) =>
        Effect.asVoid(
          limit(
            node.use((client) => client.sendCommand(["DEL", key])),
            "DEL",
          ),
        ),
    }
    const breakers = yield* Layer.build(CircuitBreaker.layerStoreRedis({ prefix: `${prefix}cb:` })).pipe(
      Effect.provideService(Redis.Redis, redis),
      Effect.map((built) => Context.get(built, Breakers.Breakers)),
    )
    return {
      redis,
      rateLimits: Stores.rateLimits(redis, prefix),
      quotaPauses: Stores.quotaPauses(redis, prefix),
      concurrency: Stores.concurrency(redis, prefix),
      hedgeBudget: Stores.hedgeBudget(redis, prefix),
      channelStats: Stores.channelStats(redis, prefix),
      spendLedger: Stores.spendLedger(redis, prefix),
      breakers,
      image: (ttlMillis) => Stores.imageStore(redis, binary, prefix, ttlMillis),
    }
  })

/**
 * How each operation reaches the state: `use(remote, local)` runs `remote` on the connection, or `local`
 * when there is none (not connected yet, or unreachable).
 */
interface Link {
  readonly use: <A, E, R>(
    remote: (connection: Connection) => Effect.Effect<A, E | Redis.RedisError, R>,
    local: Effect.Effect<A, E, R>,
  ) => Effect.Effect<A, E, R>
  /** Run when Redis is back (spend settled while it was away). */
  readonly whenBack: (work: (connection: Connection) => Effect.Effect<void, Redis.RedisError>) => void
  readonly describe: string
}

/** Errors other than a `RedisError` pass through; a `RedisError` that is not an outage is a defect. */
const isRedisError = (error: unknown): error is Redis.RedisError => error instanceof Redis.RedisError

/** A link with no fallback: every Redis failure is a defect (tests of the stores themselves). */
const directLink = (connection: Connection, describe: string): Link => ({
  use: (remote) => remote(connection).pipe(Effect.catchIf(isRedisError, (error) => Effect.die(error))) as never,
  whenBack: () => {},
  describe,
})

/** A link that falls back to memory while Redis is unreachable, and rejoins when it answers. */
const fallbackLink = Effect.fnUntraced(function* (options: Options) {
  const scope = yield* Effect.scope
  const prefix = options.prefix ?? defaultPrefix
  const where = redact(options.url)
  const commandTimeoutMillis = options.commandTimeoutMillis ?? 2000
  const probeMillis = options.probeMillis ?? 1000
  let connection: Connection | undefined
  let up = false
  let probing = false
  const pending: Array<(connection: Connection) => Effect.Effect<void, Redis.RedisError>> = []

  const flush = (current: Connection) =>
    Effect.gen(function* () {
      while (pending.length > 0) {
        const work = pending[0]!
        const exit = yield* Effect.exit(work(current))
        if (Exit.isFailure(exit)) return false
        pending.shift()
      }
      return true
    })

  const rejoined = (current: Connection, first: boolean) =>
    Effect.gen(function* () {
      if (!(yield* flush(current))) return false
      up = true
      yield* Metric.update(redisUp, 1)
      if (!first) yield* Effect.logWarning(`state: Redis at ${where} is back; this worker shares its state again`)
      return true
    })

  const probe: Effect.Effect<void> = Effect.gen(function* () {
    while (true) {
      yield* Effect.sleep(probeMillis)
      const current = connection
      if (current === undefined) continue
      const answered = yield* Effect.exit(current.redis.send("PING"))
      if (Exit.isSuccess(answered) && (yield* rejoined(current, false))) break
    }
    probing = false
  })

  const wentDown = (error: Redis.RedisError) =>
    Effect.gen(function* () {
      if (!up) return
      up = false
      yield* Metric.update(fallbacks, 1)
      yield* Metric.update(redisUp, 0)
      const reason = error.cause instanceof Error ? error.cause.message : String(error.cause)
      yield* Effect.logWarning(
        `state: Redis at ${where} is unreachable (${reason.replaceAll(options.url, where)}); this worker goes on with its own memory state${options.failOpen === true ? "" : " (budgets refuse new requests)"} and rejoins when it answers`,
      )
      if (!probing) {
        probing = true
        yield* Effect.forkIn(probe, scope)
      }
    })

  const link: Link = {
    use: (remote, local) =>
      Effect.suspend(() => {
        const current = connection
        if (current === undefined || !up) return local
        return remote(current).pipe(
          Effect.catchIf(isRedisError, (error) =>
            isUnreachable(error) ? Effect.andThen(wentDown(error), local) : Effect.die(error),
          ),
        ) as never
      }),
    whenBack: (work) => {
      pending.push(work)
    },
    describe: `redis ${where}`,
  }

  // Connect in the background: a worker whose Redis is down at start begins on its own state.
  const ready = yield* Deferred.make<void>()
  const connect = Effect.gen(function* () {
    const context = yield* Layer.buildWithScope(
      NodeRedis.layer({
        url: options.url,
        disableOfflineQueue: true,
        socket: {
          connectTimeout: options.connectTimeoutMillis ?? 5000,
          reconnectStrategy: (retries: number) =>
            Math.min(2 ** retries * 50, probeMillis) + Math.floor(Math.random() * 100),
        },
      }).pipe(Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error"))),
      scope,
    )
    connection = yield* Scope.provide(connectionOf(context, prefix, commandTimeoutMillis), scope)
    yield* rejoined(connection, !probing)
    probing = false
  }).pipe(
    Effect.catch((error) =>
      Effect.logWarning(
        `state: cannot connect to Redis at ${where} (${String(error.cause).replaceAll(options.url, where)}); this worker runs on its own memory state`,
      ),
    ),
    Effect.ensuring(Deferred.succeed(ready, undefined)),
  )
  yield* Effect.forkIn(connect, scope)
  const connected = yield* Deferred.await(ready).pipe(
    Effect.timeoutOption(options.connectTimeoutMillis ?? 5000),
    Effect.map((done) => done._tag === "Some" && up),
  )
  if (!connected) {
    probing = true
    yield* Metric.update(fallbacks, 1)
    yield* Metric.update(redisUp, 0)
    yield* Effect.logWarning(
      `state: Redis at ${where} did not answer within ${options.connectTimeoutMillis ?? 5000} ms; this worker starts on its own memory state and joins when it answers`,
    )
  }
  return link
})

/** The services over a link: each operation remote when it can be, else this worker's memory. */
const servicesOver = (link: Link, failOpen: boolean) =>
  Effect.gen(function* () {
    const localLimits = yield* RateLimits.makeMemory
    const localPauses = yield* QuotaPauses.makeMemory
    const localSlots = yield* Concurrency.makeMemory
    const localHedges = yield* HedgeBudget.makeMemory
    const localStats = yield* ChannelStats.makeMemory
    const localLedger = yield* SpendLedger.makeMemory
    const localBreakers = yield* Layer.build(Breakers.layerMemory).pipe(
      Effect.map((built) => Context.get(built, Breakers.Breakers)),
    )
    const asRedisError = (
      error: CircuitBreaker.CircuitBreakerError,
    ): Effect.Effect<never, CircuitBreaker.CircuitBreakerError | Redis.RedisError> =>
      error.reason._tag === "CircuitBreakerStoreError" && error.reason.cause instanceof Redis.RedisError
        ? Effect.fail(error.reason.cause)
        : Effect.fail(error)

    const breakers: Breakers.Breakers["Service"] = {
      admit: (key) => link.use((c) => Effect.catch(c.breakers.admit(key), asRedisError), localBreakers.admit(key)),
      record: (options) =>
        link.use((c) => Effect.catch(c.breakers.record(options), asRedisError), localBreakers.record(options)),
      state: (key) => link.use((c) => Effect.catch(c.breakers.state(key), asRedisError), localBreakers.state(key)),
    }
    const rateLimits: RateLimits.RateLimitsShape = {
      acquire: (key, limit, windowMillis) =>
        link.use((c) => c.rateLimits.acquire(key, limit, windowMillis), localLimits.acquire(key, limit, windowMillis)),
      tryAcquire: (key, limit, windowMillis) =>
        link.use(
          (c) => c.rateLimits.tryAcquire(key, limit, windowMillis),
          localLimits.tryAcquire(key, limit, windowMillis),
        ),
    }
    const quotaPauses: QuotaPauses.QuotaPausesShape = {
      pausedUntil: (key) => link.use((c) => c.quotaPauses.pausedUntil(key), localPauses.pausedUntil(key)),
      pause: (key, options) => link.use((c) => c.quotaPauses.pause(key, options), localPauses.pause(key, options)),
    }
    const concurrency: Concurrency.ConcurrencyShape = {
      acquire: (key, limit, leaseMillis) =>
        link.use((c) => c.concurrency.acquire(key, limit, leaseMillis), localSlots.acquire(key, limit, leaseMillis)),
      renew: (lease, leaseMillis) =>
        link.use((c) => c.concurrency.renew(lease, leaseMillis), localSlots.renew(lease, leaseMillis)),
      release: (lease) =>
        Effect.andThen(
          localSlots.release(lease),
          link.use((c) => c.concurrency.release(lease), Effect.void),
        ),
      inUse: (key) => link.use((c) => c.concurrency.inUse(key), localSlots.inUse(key)),
    }
    const hedgeBudget: HedgeBudget.HedgeBudgetShape = {
      recordCall: (key, windowMillis) =>
        link.use((c) => c.hedgeBudget.recordCall(key, windowMillis), localHedges.recordCall(key, windowMillis)),
      tryHedge: (key, share, windowMillis) =>
        link.use(
          (c) => c.hedgeBudget.tryHedge(key, share, windowMillis),
          localHedges.tryHedge(key, share, windowMillis),
        ),
    }
    // Summaries are read on every call (hedge delays, adaptive timeouts, up to three keys each): a worker
    // keeps what it read for a second, and forgets a key at once when it records into it itself, so only
    // other workers' calls of the last second can be missing from a percentile.
    const summaries = new Map<string, { readonly at: number; readonly value: ChannelStats.Summary | undefined }>()
    const channelStats: ChannelStats.ChannelStatsShape = {
      record: (key, sample) =>
        Effect.andThen(
          Effect.sync(() => summaries.delete(key)),
          link.use((c) => c.channelStats.record(key, sample), localStats.record(key, sample)),
        ),
      summary: (key) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const kept = summaries.get(key)
          if (kept !== undefined && now - kept.at < summaryCacheMillis && now >= kept.at)
            return Effect.succeed(kept.value)
          return Effect.tap(
            link.use((c) => c.channelStats.summary(key), localStats.summary(key)),
            (value) =>
              Effect.sync(() => {
                summaries.set(key, { at: now, value })
              }),
          )
        }),
    }
    const unavailable: SpendLedger.Refused = {
      _tag: "Refused",
      balance: { spentMicros: 0, reservedMicros: 0 },
      unavailable: `${link.describe} is unreachable`,
    }
    const spendLedger: SpendLedger.SpendLedgerShape = {
      describe: link.describe,
      reserve: (window, micros, capMicros, leaseMillis) =>
        link.use(
          (c) => c.spendLedger.reserve(window, micros, capMicros, leaseMillis),
          failOpen ? localLedger.reserve(window, micros, capMicros, leaseMillis) : Effect.succeed(unavailable),
        ),
      // This worker's own ledger hears of every settle too: if Redis goes away, a fail-open cap still
      // counts what this worker spent. A settle Redis cannot take now is written when it is back.
      settle: (reservation, actualMicros) =>
        Effect.andThen(
          localLedger.settle(reservation, actualMicros),
          link.use(
            (c) => c.spendLedger.settle(reservation, actualMicros),
            Effect.sync(() => link.whenBack((c) => c.spendLedger.settle(reservation, actualMicros))),
          ),
        ),
      release: (reservation) =>
        Effect.andThen(
          localLedger.release(reservation),
          link.use((c) => c.spendLedger.release(reservation), Effect.void),
        ),
      balance: (window) => link.use((c) => c.spendLedger.balance(window), localLedger.balance(window)),
    }
    const imageCache: ImageCache.ImageCacheShape = {
      open: (spec) => {
        if (spec.store === "file") return ImageCache.openLocal(spec)
        return Effect.map(ImageCache.openLocal(spec), (local): ImageCache.ImageStore => {
          const ttl = spec.ttlMillis ?? Stores.defaultEntryTtlMillis
          const remotes = new WeakMap<Connection, ReturnType<typeof Stores.imageStore>>()
          const remote = (c: Connection) => {
            let found = remotes.get(c)
            if (found === undefined) {
              found = c.image(ttl)
              remotes.set(c, found)
            }
            return found
          }
          return {
            kind: "redis",
            corrupt: () => local.corrupt(),
            get: (key) => link.use((c) => remote(c).get(key), local.get(key)),
            set: (key, entry) => link.use((c) => remote(c).set(key, entry), local.set(key, entry)),
            remove: (key) =>
              Effect.andThen(
                local.remove(key),
                link.use((c) => remote(c).remove(key), Effect.void),
              ),
            claim: (key, leaseMillis) =>
              link.use((c) => remote(c).claim(key, leaseMillis), local.claim(key, leaseMillis)),
            renew: (lease, leaseMillis) =>
              link.use((c) => remote(c).renew(lease, leaseMillis), local.renew(lease, leaseMillis)),
            release: (lease) =>
              Effect.andThen(
                local.release(lease),
                link.use((c) => remote(c).release(lease), Effect.void),
              ),
          }
        })
      },
    }
    return Context.make(Breakers.Breakers, breakers).pipe(
      Context.add(RateLimits.RateLimits, rateLimits),
      Context.add(QuotaPauses.QuotaPauses, quotaPauses),
      Context.add(Concurrency.Concurrency, concurrency),
      Context.add(HedgeBudget.HedgeBudget, hedgeBudget),
      Context.add(ChannelStats.ChannelStats, channelStats),
      Context.add(SpendLedger.SpendLedger, spendLedger),
      Context.add(ImageCache.ImageCache, imageCache),
    )
  })

/**
 * The state services in Redis, for workers: falls back to this worker's memory while Redis is
 * unreachable and rejoins when it answers (see the module doc). Never fails to build.
 *
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Services> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const link = yield* fallbackLink(options)
      return yield* servicesOver(link, options.failOpen === true)
    }),
  )

/**
 * The state services over an already connected Redis, with no fallback: a Redis failure is a defect.
 * What the contract suites run against (nothing can hide behind the fallback there).
 *
 * @category layers
 */
export const layerDirect = (options: {
  readonly prefix?: string | undefined
  readonly commandTimeoutMillis?: number | undefined
}): Layer.Layer<Services, never, Redis.Redis | NodeRedis.NodeRedis> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const context = yield* Effect.context<Redis.Redis | NodeRedis.NodeRedis>()
      const connection = yield* connectionOf(
        context,
        options.prefix ?? defaultPrefix,
        options.commandTimeoutMillis ?? 2000,
      )
      return yield* servicesOver(directLink(connection, "redis"), false)
    }),
  )

/** A connected client for {@link layerDirect} (fails when Redis cannot be reached). @category layers */
export const layerClient = (url: string): Layer.Layer<Redis.Redis | NodeRedis.NodeRedis, Redis.RedisError> =>
  NodeRedis.layer({ url, disableOfflineQueue: true })

/**
 * Whether Redis at `url` answers (`peel validate`): connects once, sends PING, disconnects. Fails with a
 * message naming the host (never the password).
 *
 * @category checks
 */
export const check = (url: string, timeoutMillis = 3000): Effect.Effect<void, string> =>
  Effect.scoped(
    Effect.gen(function* () {
      const context = yield* Layer.build(
        NodeRedis.layer({ url, disableOfflineQueue: true, socket: { connectTimeout: timeoutMillis } }).pipe(
          Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error")),
        ),
      )
      yield* Context.get(context, Redis.Redis).send("PING")
    }),
  ).pipe(
    Effect.timeoutOrElse({
      duration: timeoutMillis + 500,
      orElse: () => Effect.fail(new Redis.RedisError({ cause: new Error(`no answer within ${timeoutMillis} ms`) })),
    }),
    Effect.mapError(
      (error) =>
        `Redis at ${redact(url)} is not reachable: ${(error.cause instanceof Error ? error.cause.message : String(error.cause)).replaceAll(url, redact(url))}`,
    ),
  )
