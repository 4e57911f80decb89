/**
 * Per-channel concurrency: at most `limit` calls in flight for a key, as LEASED slots. A slot is held for
 * `leaseMillis` and renewed while its call runs ({@link withSlot} renews it every third of the lease); a
 * process that dies holding slots gives them back when their leases run out, so a shared store never
 * leaks capacity. A network store implements it atomically (a Redis sorted set of slot id → expiry and a
 * script, a Postgres row per slot).
 *
 * @since 0.4.0
 */
import { Clock, Context, Deferred, Effect, Layer, type Scope } from "effect"

/** One slot held. @category model */
export interface Lease {
  readonly key: string
  readonly id: string
}

/** @category model */
export interface ConcurrencyShape {
  /** Take one of `limit` slots of `key`, waiting until one is free. Interruptible while it waits. */
  readonly acquire: (key: string, limit: number, leaseMillis: number) => Effect.Effect<Lease>
  /** Extend a held slot's lease; `false` when it had already run out (and may have been taken). */
  readonly renew: (lease: Lease, leaseMillis: number) => Effect.Effect<boolean>
  /** Give the slot back (nothing when its lease already ran out). */
  readonly release: (lease: Lease) => Effect.Effect<void>
  /** Slots of `key` held now (leases not yet run out). */
  readonly inUse: (key: string) => Effect.Effect<number>
}

/** @category services */
export class Concurrency extends Context.Service<Concurrency, ConcurrencyShape>()("@peel/core/state/Concurrency") {}

/** The default lease: a dead process's slots come back within 30 s. @category defaults */
export const defaultLeaseMillis = 30_000

/**
 * Run `effect` holding one of `limit` slots of `key`: acquired (waiting if need be), renewed every third
 * of the lease while it runs, released when it ends.
 *
 * @category combinators
 */
export const withSlot =
  (concurrency: ConcurrencyShape, key: string, limit: number, leaseMillis = defaultLeaseMillis) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<R, Scope.Scope>> =>
    Effect.scoped(
      Effect.gen(function* () {
        const lease = yield* Effect.acquireRelease(
          concurrency.acquire(key, limit, leaseMillis),
          (held) => concurrency.release(held),
          { interruptible: true },
        )
        yield* Effect.forkScoped(
          Effect.forever(
            Effect.sleep(Math.max(1, Math.floor(leaseMillis / 3))).pipe(
              Effect.andThen(concurrency.renew(lease, leaseMillis)),
            ),
          ),
        )
        return yield* effect
      }),
    ) as Effect.Effect<A, E, Exclude<R, Scope.Scope>>

let counter = 0
/** A slot id unique within this process (a network store adds the process's own id). @category constructors */
export const slotId = (): string =>
  `${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`

/** One process's concurrency slots, in memory. @category constructors */
export const makeMemory: Effect.Effect<ConcurrencyShape> = Effect.sync(() => {
  /** key → slot id → lease end (epoch ms). */
  const slots = new Map<string, Map<string, number>>()
  /** Completed whenever a slot is given back, so waiters look again. */
  let freed = Deferred.makeUnsafe<void>()
  const live = (key: string, now: number): Map<string, number> => {
    const held = slots.get(key) ?? new Map<string, number>()
    for (const [id, until] of held) if (until <= now) held.delete(id)
    slots.set(key, held)
    return held
  }
  const notify = () => {
    const waiting = freed
    freed = Deferred.makeUnsafe<void>()
    Deferred.doneUnsafe(waiting, Effect.void)
  }
  const acquire = (key: string, limit: number, leaseMillis: number): Effect.Effect<Lease> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const held = live(key, now)
      if (held.size < limit) {
        const id = slotId()
        held.set(id, now + leaseMillis)
        return Effect.succeed({ key, id })
      }
      // Wait for a release, or for the first lease to run out.
      const firstEnd = Math.min(...held.values())
      return Effect.raceFirst(Deferred.await(freed), Effect.sleep(Math.max(1, firstEnd - now))).pipe(
        Effect.andThen(Effect.suspend(() => acquire(key, limit, leaseMillis))),
      )
    })
  return {
    acquire,
    renew: (lease, leaseMillis) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const held = live(lease.key, now)
        if (!held.has(lease.id)) return false
        held.set(lease.id, now + leaseMillis)
        return true
      }),
    release: (lease) =>
      Effect.sync(() => {
        if (slots.get(lease.key)?.delete(lease.id) === true) notify()
      }),
    inUse: (key) => Effect.map(Clock.currentTimeMillis, (now) => live(key, now).size),
  }
})

/** @category layers */
export const layerMemory: Layer.Layer<Concurrency> = Layer.effect(Concurrency, makeMemory)
