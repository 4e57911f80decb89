/**
 * The spend ledger: what every budget window has spent and has reserved, shared by whoever shares the
 * Layer (one process in memory; processes sharing a SQLite file; machines sharing a network store).
 *
 * The protocol is **reserve, then settle or release**. {@link SpendLedgerShape.reserve} is one atomic
 * step — refused when settled spend + every open reservation + this one would pass the cap — and returns
 * a reservation with an expiry. {@link SpendLedgerShape.settle} replaces it with what was really spent;
 * {@link SpendLedgerShape.release} drops it (nothing was spent). A reservation that is never settled —
 * its process died — stops counting when it expires, so a crash never holds a cap shut for good. A
 * settle after the expiry still records the spend, in the reservation's own window.
 *
 * Amounts are whole micro-dollars inside, so sums never drift. Time comes from the `Clock` (`TestClock`
 * drives expiry in tests).
 *
 * Three implementations ship: {@link layerMemory} (this process), `SpendLedgerSqlite.layer` (`node:sqlite`, one
 * `BEGIN IMMEDIATE` transaction per reserve: processes sharing the file share the caps) and
 * `State.spendLedgerPostgres` (one transaction locking the window's row per reserve: workers on any machine
 * share the caps). A network store implements the same four operations: reserve as one script or
 * transaction, reservations as rows or keys with a TTL.
 *
 * @since 0.4.0
 */
import { randomUUID } from "node:crypto"
import { Clock, Context, Effect, Layer } from "effect"

/** One window of one budget: `index` counts windows from the epoch (0 for a cap without windows). @category model */
export interface WindowKey {
  readonly budget: string
  readonly index: number
}

/** An open reservation: settle or release it. @category model */
export interface Reservation {
  readonly id: string
  readonly window: WindowKey
  readonly micros: number
  /** Epoch ms after which it no longer counts. */
  readonly expiresAt: number
}

/** Where a window stands, in micro-dollars. @category model */
export interface Balance {
  readonly spentMicros: number
  readonly reservedMicros: number
}

/** A refusal: the window's balance before the reservation that would have passed the cap. @category model */
export interface Refused {
  readonly _tag: "Refused"
  readonly balance: Balance
  /**
   * Set when the ledger could not be asked (a network store that is unreachable, failing closed): no
   * request starts without a reservation. Says why, without secrets.
   */
  readonly unavailable?: string | undefined
}

/** @category model */
export interface SpendLedgerShape {
  /** What it is, for messages (`memory`, `sqlite /path`). */
  readonly describe: string
  /**
   * Reserve `micros` in `window` unless spent + reserved + `micros` would pass `capMicros`: one atomic
   * step. The reservation expires `leaseMillis` from now unless settled or released first.
   */
  readonly reserve: (
    window: WindowKey,
    micros: number,
    capMicros: number,
    leaseMillis: number,
  ) => Effect.Effect<Reservation | Refused>
  /** Replace a reservation with what was really spent (after its expiry too: the spend happened). */
  readonly settle: (reservation: Reservation, actualMicros: number) => Effect.Effect<void>
  /** Drop a reservation: nothing was spent. */
  readonly release: (reservation: Reservation) => Effect.Effect<void>
  /** A window's spend and its live reservations. */
  readonly balance: (window: WindowKey) => Effect.Effect<Balance>
}

/** @category services */
export class SpendLedger extends Context.Service<SpendLedger, SpendLedgerShape>()("@peel/core/state/SpendLedger") {}

/**
 * The ledger's rules over synchronous storage, for the implementations that are one step in this process
 * (memory, an embedded SQLite file); each call gets the time from the caller.
 *
 * @category internals
 */
export interface Book {
  readonly describe: string
  readonly reserve: (
    window: WindowKey,
    micros: number,
    capMicros: number,
    now: number,
    leaseMillis: number,
  ) => Reservation | Refused
  readonly settle: (reservation: Reservation, actualMicros: number) => void
  readonly release: (reservation: Reservation) => void
  readonly balance: (window: WindowKey, now: number) => Balance
  readonly close: () => void
}

/** A book as the effectful service, with time from the `Clock`. @category constructors */
export const fromBook = (book: Book): SpendLedgerShape => ({
  describe: book.describe,
  reserve: (window, micros, capMicros, leaseMillis) =>
    Effect.map(Clock.currentTimeMillis, (now) => book.reserve(window, micros, capMicros, now, leaseMillis)),
  settle: (reservation, actualMicros) => Effect.sync(() => book.settle(reservation, actualMicros)),
  release: (reservation) => Effect.sync(() => book.release(reservation)),
  balance: (window) => Effect.map(Clock.currentTimeMillis, (now) => book.balance(window, now)),
})

const windowName = (window: WindowKey) => `${window.budget}\u0000${window.index}`

/** A book in this process's memory. @category constructors */
export const memoryBook = (): Book => {
  const windows = new Map<string, { spent: number; reservations: Map<string, Reservation> }>()
  const stateOf = (window: WindowKey) => {
    const name = windowName(window)
    let state = windows.get(name)
    if (state === undefined) {
      state = { spent: 0, reservations: new Map() }
      windows.set(name, state)
    }
    return state
  }
  const live = (state: { reservations: Map<string, Reservation> }, now: number) => {
    let sum = 0
    for (const [id, reservation] of state.reservations)
      if (reservation.expiresAt <= now) state.reservations.delete(id)
      else sum += reservation.micros
    return sum
  }
  return {
    describe: "memory",
    reserve: (window, micros, capMicros, now, leaseMillis) => {
      const state = stateOf(window)
      const reserved = live(state, now)
      if (state.spent + reserved + micros > capMicros)
        return { _tag: "Refused", balance: { spentMicros: state.spent, reservedMicros: reserved } }
      const reservation: Reservation = { id: randomUUID(), window, micros, expiresAt: now + leaseMillis }
      state.reservations.set(reservation.id, reservation)
      return reservation
    },
    settle: (reservation, actualMicros) => {
      const state = stateOf(reservation.window)
      state.reservations.delete(reservation.id)
      state.spent += actualMicros
    },
    release: (reservation) => {
      stateOf(reservation.window).reservations.delete(reservation.id)
    },
    balance: (window, now) => {
      const state = stateOf(window)
      return { spentMicros: state.spent, reservedMicros: live(state, now) }
    },
    close: () => {},
  }
}

/** One process's ledger, in memory. @category constructors */
export const makeMemory: Effect.Effect<SpendLedgerShape> = Effect.sync(() => fromBook(memoryBook()))

/** @category layers */
export const layerMemory: Layer.Layer<SpendLedger> = Layer.effect(SpendLedger, makeMemory)
