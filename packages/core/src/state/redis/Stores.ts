/**
 * Each state service over Redis, as it talks to the server: every operation is one script
 * (`Scripts.ts`) or one command, and may fail with a `RedisError`. `RedisState` turns these into the
 * services (a connection error there falls back to this process's memory; a server error reply is a
 * defect, never hidden).
 *
 * Keys, under a prefix (`peel:` by default): `rl:` rate-limit logs, `qp:` quota pauses, `cc:` concurrency
 * slots, `hb:` hedge budgets, `cs:` channel statistics, `sl:` spend-ledger windows, `ic:` cached images
 * and their leases.
 *
 * @since 0.5.0
 */
import { randomUUID } from "node:crypto"
import { Clock, Effect } from "effect"
import type { Redis } from "effect/persistence"
import * as ChannelStats from "../ChannelStats.ts"
import type * as Concurrency from "../Concurrency.ts"
import * as ImageCache from "../ImageCache.ts"
import type * as SpendLedger from "../SpendLedger.ts"
import * as Scripts from "./Scripts.ts"

type RedisService = Redis.Redis["Service"]
type Fallible<F> = F extends (...args: infer P) => Effect.Effect<infer A, never, infer R>
  ? (...args: P) => Effect.Effect<A, Redis.RedisError, R>
  : never
/** A service shape whose operations may fail with a `RedisError`. */
export type Remote<S> = { readonly [K in keyof S]: Fallible<S[K]> }

/** Whole bytes in and out of Redis (the image cache's entries), beside the `Redis` service's strings. */
export interface Binary {
  readonly get: (key: string) => Effect.Effect<Uint8Array | undefined, Redis.RedisError>
  readonly set: (key: string, bytes: Uint8Array, ttlMillis: number) => Effect.Effect<void, Redis.RedisError>
  readonly remove: (key: string) => Effect.Effect<void, Redis.RedisError>
}

const number = (value: string | number | null | undefined): number => Number(value ?? 0)

/** RateLimits: a sorted set of reserved starts per key. */
export const rateLimits = (redis: RedisService, prefix: string) => {
  const script = redis.eval(Scripts.rateAcquire)
  const take = (key: string, limit: number, windowMillis: number, nowOnly: boolean) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.map(script(`${prefix}rl:${key}`, now, limit, windowMillis, randomUUID(), nowOnly), (wait) => {
        const ms = number(wait)
        return ms < 0 ? Number.POSITIVE_INFINITY : ms
      }),
    )
  return {
    acquire: (key: string, limit: number, windowMillis: number) => take(key, limit, windowMillis, false),
    tryAcquire: (key: string, limit: number, windowMillis: number) => take(key, limit, windowMillis, true),
  }
}

/** QuotaPauses: a hash { until, since } per key, with a TTL past its end. */
export const quotaPauses = (redis: RedisService, prefix: string) => {
  const read = redis.eval(Scripts.pauseRead)
  const set = redis.eval(Scripts.pauseSet)
  return {
    pausedUntil: (key: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.map(read(`${prefix}qp:${key}`, now), number)),
    pause: (key: string, options: { readonly until: number; readonly sentAt: number }) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(set(`${prefix}qp:${key}`, now, options.until, options.sentAt), number),
      ),
  }
}

/** The longest a waiting `acquire` sleeps before asking again (slots freed by other processes). */
export const slotPollMillis = 100

/**
 * Concurrency: a sorted set slot id → lease end per key. A waiter asks again when a slot is given back in
 * this process, when the first lease runs out, or every {@link slotPollMillis} (other processes).
 */
export const concurrency = (redis: RedisService, prefix: string) => {
  const acquireScript = redis.eval(Scripts.slotAcquire)
  const renewScript = redis.eval(Scripts.slotRenew)
  const waiters = new Set<() => void>()
  const notify = () => {
    const woken = [...waiters]
    waiters.clear()
    for (const wake of woken) wake()
  }
  const keyOf = (key: string) => `${prefix}cc:${key}`
  const acquire = (
    key: string,
    limit: number,
    leaseMillis: number,
  ): Effect.Effect<Concurrency.Lease, Redis.RedisError> =>
    Effect.suspend(() => {
      // Registered before asking, so a release while the answer is on its way still wakes this waiter.
      let woken = false
      let wake: () => void = () => {
        woken = true
      }
      const signal = () => wake()
      waiters.add(signal)
      const id = randomUUID()
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        acquireScript(keyOf(key), now, limit, leaseMillis, id).pipe(
          Effect.flatMap(([got, firstEnds]) => {
            if (got === 1) {
              waiters.delete(signal)
              return Effect.succeed<Concurrency.Lease>({ key, id })
            }
            const wait = Math.max(1, Math.min(number(firstEnds), slotPollMillis))
            const released = Effect.callback<void>((resume) => {
              if (woken) return resume(Effect.void)
              wake = () => resume(Effect.void)
              return Effect.sync(() => waiters.delete(signal))
            })
            return Effect.raceFirst(released, Effect.sleep(wait)).pipe(
              Effect.ensuring(Effect.sync(() => waiters.delete(signal))),
              Effect.andThen(acquire(key, limit, leaseMillis)),
            )
          }),
          Effect.onError(() => Effect.sync(() => waiters.delete(signal))),
        ),
      )
    })
  return {
    acquire,
    renew: (lease: Concurrency.Lease, leaseMillis: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(renewScript(keyOf(lease.key), now, leaseMillis, lease.id), (renewed) => renewed === 1),
      ),
    release: (lease: Concurrency.Lease) =>
      Effect.map(redis.send<number>("ZREM", keyOf(lease.key), lease.id), (removed) => {
        if (Number(removed) > 0) notify()
      }),
    inUse: (key: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(redis.send<number>("ZCOUNT", keyOf(key), `(${now}`, "+inf"), Number),
      ),
  }
}

/** HedgeBudget: two sorted sets of times per key (calls, hedges). */
export const hedgeBudget = (redis: RedisService, prefix: string) => {
  const record = redis.eval(Scripts.hedgeRecord)
  const attempt = redis.eval(Scripts.hedgeTry)
  return {
    recordCall: (key: string, windowMillis: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.asVoid(record(`${prefix}hb:${key}:calls`, now, windowMillis, randomUUID())),
      ),
    tryHedge: (key: string, share: number, windowMillis: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(
          attempt(`${prefix}hb:${key}:calls`, `${prefix}hb:${key}:hedges`, now, share, windowMillis, randomUUID()),
          (taken) => taken === 1,
        ),
      ),
  }
}

/** How long a channel's statistics outlive its last call. */
export const statsTtlMillis = 24 * 60 * 60 * 1000

/** ChannelStats: a hash { samples, average } and a capped list of recent latencies per key. */
export const channelStats = (redis: RedisService, prefix: string) => {
  const record = redis.eval(Scripts.statsRecord)
  const read = redis.eval(Scripts.statsRead)
  return {
    record: (key: string, sample: ChannelStats.Sample) =>
      Effect.asVoid(
        record(
          `${prefix}cs:${key}`,
          `${prefix}cs:${key}:recent`,
          sample.latencyMs,
          sample.ok,
          ChannelStats.alpha,
          ChannelStats.samplesKept,
          statsTtlMillis,
        ),
      ),
    summary: (key: string) =>
      Effect.map(read(`${prefix}cs:${key}`, `${prefix}cs:${key}:recent`), (found): ChannelStats.Summary | undefined =>
        found === null || found === undefined
          ? undefined
          : { samples: Number(found[0]), averageMs: Number(found[1]), recent: found[2].map(Number) },
      ),
  }
}

/** SpendLedger: per window, settled spend, open reservations (id → expiry) and their amounts. */
export const spendLedger = (redis: RedisService, prefix: string) => {
  const reserve = redis.eval(Scripts.ledgerReserve)
  const settle = redis.eval(Scripts.ledgerSettle)
  const release = redis.eval(Scripts.ledgerRelease)
  const balance = redis.eval(Scripts.ledgerBalance)
  const keysOf = (window: SpendLedger.WindowKey): readonly [string, string, string] => {
    const base = `${prefix}sl:${window.budget}:${window.index}`
    return [base, `${base}:open`, `${base}:amounts`]
  }
  return {
    reserve: (window: SpendLedger.WindowKey, micros: number, capMicros: number, leaseMillis: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const id = randomUUID()
        return Effect.map(
          reserve(keysOf(window), now, micros, Number.isFinite(capMicros) ? capMicros : -1, leaseMillis, id),
          (answer): SpendLedger.Reservation | SpendLedger.Refused =>
            answer[0] === 1
              ? { id, window, micros, expiresAt: number(answer[1]) }
              : { _tag: "Refused", balance: { spentMicros: number(answer[1]), reservedMicros: number(answer[2]) } },
        )
      }),
    settle: (reservation: SpendLedger.Reservation, actualMicros: number) =>
      Effect.asVoid(settle(keysOf(reservation.window), reservation.id, Math.round(actualMicros))),
    release: (reservation: SpendLedger.Reservation) =>
      Effect.asVoid(release(keysOf(reservation.window), reservation.id)),
    balance: (window: SpendLedger.WindowKey) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(
          balance(keysOf(window), now),
          (answer): SpendLedger.Balance => ({ spentMicros: number(answer[0]), reservedMicros: number(answer[1]) }),
        ),
      ),
  }
}

/** How long a cached image lives in Redis when the cache stage names no TTL. */
export const defaultEntryTtlMillis = 60 * 60 * 1000

/**
 * The image cache's store in Redis: entries in the integrity envelope (`ImageCache.encode`, checked on
 * every read, a corrupt one dropped), each with a TTL (the cache's); leases as hashes { owner, expiresAt }
 * claimed by script, so workers sharing the server coalesce an identical request in flight.
 */
export const imageStore = (redis: RedisService, binary: Binary, prefix: string, ttlMillis: number) => {
  const claim = redis.eval(Scripts.leaseClaim)
  const renew = redis.eval(Scripts.leaseRenew)
  const release = redis.eval(Scripts.leaseRelease)
  const entryKey = (key: string) => `${prefix}ic:${key}`
  const leaseKey = (key: string) => `${prefix}ic:${key}:lease`
  let corrupt = 0
  return {
    corrupt: () => corrupt,
    get: (key: string) =>
      Effect.flatMap(
        binary.get(entryKey(key)),
        (data): Effect.Effect<ImageCache.Entry | undefined, Redis.RedisError> => {
          if (data === undefined) return Effect.undefined
          const decoded = ImageCache.decode(key, data)
          if (decoded._tag === "Success") return Effect.succeed(decoded.success)
          corrupt += 1
          return Effect.as(binary.remove(entryKey(key)), undefined)
        },
      ),
    set: (key: string, entry: ImageCache.Entry) =>
      binary.set(entryKey(key), ImageCache.encode(key, entry), Math.max(1, Math.round(ttlMillis))),
    remove: (key: string) => binary.remove(entryKey(key)),
    claim: (key: string, leaseMillis: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const owner = randomUUID()
        return Effect.map(claim(leaseKey(key), now, leaseMillis, owner), (expiresAt): ImageCache.Lease | undefined =>
          expiresAt === null || expiresAt === undefined ? undefined : { key, owner, expiresAt: number(expiresAt) },
        )
      }),
    renew: (lease: ImageCache.Lease, leaseMillis: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(
          renew(leaseKey(lease.key), now, leaseMillis, lease.owner),
          (expiresAt): ImageCache.Lease | undefined =>
            expiresAt === null || expiresAt === undefined ? undefined : { ...lease, expiresAt: number(expiresAt) },
        ),
      ),
    release: (lease: ImageCache.Lease) => Effect.asVoid(release(leaseKey(lease.key), lease.owner)),
  }
}
