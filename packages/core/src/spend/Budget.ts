/**
 * Spend caps: a limit in USD per window (fixed windows aligned to the epoch — `1d` is a UTC day), kept in
 * a ledger that survives restarts and that several processes may share.
 *
 * The protocol is **reserve, then settle**: before a request calls anybody, its expected price is
 * reserved — refused when settled spend + every open reservation + this one would pass the limit — and
 * when it ends the reservation is replaced by what the request really cost (the attempt journal's sum,
 * billed failures included). Because check-and-reserve is one atomic step (one synchronous step in
 * memory; one `BEGIN IMMEDIATE` transaction in SQLite), requests in flight can never jointly pass the
 * cap as long as each costs no more than it reserved.
 *
 * Amounts are kept in whole micro-dollars, so sums never drift. A reservation whose process died is
 * released when its lease runs out.
 *
 * `effect/persistence`'s `KeyValueStore` has no compare-and-set, which a shared cap needs; SQLite
 * (`node:sqlite`, built into Node 24) gives one in a single file. Another backend (Redis with a Lua
 * script, Postgres) implements {@link Ledger}.
 *
 * @since 0.3.0
 */
import { randomUUID } from "node:crypto"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { findModel } from "@peel/contract/Catalog"
import type { Channel, ChannelRequest } from "@peel/contract/Channel"
import { costFromUsage, estimatePromptTokens } from "@peel/contract/Pricing"
import { Effect } from "effect"

/** USD → whole micro-dollars. @category money */
export const toMicros = (usd: number): number => Math.round(usd * 1e6)
/** Micro-dollars → USD. @category money */
export const fromMicros = (micros: number): number => micros / 1e6

/** A cap. @category model */
export interface Cap {
  readonly limitUsd: number
  /** Window length in ms; `Infinity` for one window forever (a run-level cap). */
  readonly windowMillis: number
}

/** An open reservation. @category model */
export interface Reservation {
  readonly id: string
  readonly window: number
  readonly micros: number
}

/** Where a window stands. @category model */
export interface Status {
  readonly limitUsd: number
  readonly spentUsd: number
  readonly reservedUsd: number
  /** Epoch ms the window started and ends (`Infinity` for a run-level cap). */
  readonly windowStart: number
  readonly windowEnd: number
}

/** A refusal: what reserving would have made the window reach. @category model */
export interface Refused {
  readonly _tag: "Refused"
  readonly status: Status
  readonly requestedUsd: number
}

/** A spend ledger for one cap. All operations are atomic. @category model */
export interface Ledger {
  readonly cap: Cap
  readonly describe: string
  /** Reserve `usd` in the window holding `now`, or say why not. */
  readonly reserve: (usd: number, now: number) => Reservation | Refused
  /** Replace a reservation with what the request really cost. */
  readonly settle: (reservation: Reservation, actualUsd: number) => void
  readonly status: (now: number) => Status
  readonly close: () => void
}

const windowOf = (cap: Cap, now: number): number =>
  Number.isFinite(cap.windowMillis) ? Math.floor(now / cap.windowMillis) : 0

const statusOf = (cap: Cap, window: number, spent: number, reserved: number): Status => ({
  limitUsd: cap.limitUsd,
  spentUsd: fromMicros(spent),
  reservedUsd: fromMicros(reserved),
  windowStart: Number.isFinite(cap.windowMillis) ? window * cap.windowMillis : 0,
  windowEnd: Number.isFinite(cap.windowMillis) ? (window + 1) * cap.windowMillis : Number.POSITIVE_INFINITY,
})

/** A ledger in this process (tests, run-level `--max-spend`, single-process services). @category constructors */
export const memory = (cap: Cap): Ledger => {
  const limit = toMicros(cap.limitUsd)
  const windows = new Map<number, { spent: number; reservations: Map<string, number> }>()
  const windowState = (window: number) => {
    let state = windows.get(window)
    if (state === undefined) {
      state = { spent: 0, reservations: new Map() }
      windows.set(window, state)
      // Old windows are of no further use.
      for (const old of windows.keys()) if (old < window - 1) windows.delete(old)
    }
    return state
  }
  const reservedIn = (state: { reservations: Map<string, number> }) => {
    let sum = 0
    for (const micros of state.reservations.values()) sum += micros
    return sum
  }
  return {
    cap,
    describe: "memory",
    reserve: (usd, now) => {
      const window = windowOf(cap, now)
      const state = windowState(window)
      const micros = toMicros(usd)
      const reserved = reservedIn(state)
      if (state.spent + reserved + micros > limit)
        return { _tag: "Refused", status: statusOf(cap, window, state.spent, reserved), requestedUsd: usd }
      const id = randomUUID()
      state.reservations.set(id, micros)
      return { id, window, micros }
    },
    settle: (reservation, actualUsd) => {
      const state = windowState(reservation.window)
      state.reservations.delete(reservation.id)
      state.spent += toMicros(actualUsd)
    },
    status: (now) => {
      const window = windowOf(cap, now)
      const state = windowState(window)
      return statusOf(cap, window, state.spent, reservedIn(state))
    },
    close: () => {},
  }
}

/** Options of the SQLite ledger. @category constructors */
export interface SqliteOptions {
  readonly path: string
  /** Budgets sharing one file are told apart by name. */
  readonly name: string
  /** How long a reservation holds if its process never settles it (default 1 h). */
  readonly leaseMillis?: number
}

/**
 * A ledger in a SQLite file (`node:sqlite`): survives restarts, and processes sharing the file share
 * the cap (WAL mode, `BEGIN IMMEDIATE` around check-and-reserve, a 10 s busy timeout).
 *
 * @category constructors
 */
export const sqlite = (cap: Cap, options: SqliteOptions): Ledger => {
  mkdirSync(dirname(options.path), { recursive: true })
  const db = new DatabaseSync(options.path)
  db.exec("PRAGMA busy_timeout = 10000")
  db.exec("PRAGMA journal_mode = WAL")
  db.exec(`CREATE TABLE IF NOT EXISTS peel_budget_spend (
    name TEXT NOT NULL, window INTEGER NOT NULL, spent_micros INTEGER NOT NULL, PRIMARY KEY (name, window))`)
  db.exec(`CREATE TABLE IF NOT EXISTS peel_budget_reservations (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, window INTEGER NOT NULL, micros INTEGER NOT NULL, expires INTEGER NOT NULL)`)
  const lease = options.leaseMillis ?? 60 * 60 * 1000
  const limit = toMicros(cap.limitUsd)
  const name = options.name
  const spentOf = db.prepare("SELECT spent_micros AS spent FROM peel_budget_spend WHERE name = ? AND window = ?")
  const reservedOf = db.prepare(
    "SELECT COALESCE(SUM(micros), 0) AS reserved FROM peel_budget_reservations WHERE name = ? AND window = ?",
  )
  const dropExpired = db.prepare("DELETE FROM peel_budget_reservations WHERE name = ? AND expires < ?")
  const insert = db.prepare(
    "INSERT INTO peel_budget_reservations (id, name, window, micros, expires) VALUES (?, ?, ?, ?, ?)",
  )
  const remove = db.prepare("DELETE FROM peel_budget_reservations WHERE id = ?")
  const addSpend = db.prepare(
    `INSERT INTO peel_budget_spend (name, window, spent_micros) VALUES (?, ?, ?)
     ON CONFLICT (name, window) DO UPDATE SET spent_micros = spent_micros + excluded.spent_micros`,
  )
  const transaction = <A>(body: () => A): A => {
    db.exec("BEGIN IMMEDIATE")
    try {
      const result = body()
      db.exec("COMMIT")
      return result
    } catch (error) {
      db.exec("ROLLBACK")
      throw error
    }
  }
  const numbers = (window: number) => ({
    spent: Number((spentOf.get(name, window) as { spent?: number } | undefined)?.spent ?? 0),
    reserved: Number((reservedOf.get(name, window) as { reserved: number }).reserved),
  })
  let open = true
  return {
    cap,
    describe: `sqlite ${options.path} (${name})`,
    reserve: (usd, now) =>
      transaction(() => {
        const window = windowOf(cap, now)
        dropExpired.run(name, now)
        const { spent, reserved } = numbers(window)
        const micros = toMicros(usd)
        if (spent + reserved + micros > limit)
          return { _tag: "Refused", status: statusOf(cap, window, spent, reserved), requestedUsd: usd } as const
        const id = randomUUID()
        insert.run(id, name, window, micros, now + lease)
        return { id, window, micros }
      }),
    settle: (reservation, actualUsd) =>
      transaction(() => {
        remove.run(reservation.id)
        addSpend.run(name, reservation.window, toMicros(actualUsd))
      }),
    status: (now) => {
      const window = windowOf(cap, now)
      const { spent, reserved } = numbers(window)
      return statusOf(cap, window, spent, reserved)
    },
    close: () => {
      if (open) db.close()
      open = false
    },
  }
}

/** A refusal's message, with the numbers. @category messages */
export const refusalMessage = (refused: Refused, what = "budget"): string => {
  const status = refused.status
  const usd = (value: number) => `$${value.toFixed(4)}`
  const window = Number.isFinite(status.windowEnd)
    ? ` in the window ${new Date(status.windowStart).toISOString()} – ${new Date(status.windowEnd).toISOString()}`
    : ""
  return `${what}: this request could cost up to ${usd(refused.requestedUsd)}, and ${usd(status.spentUsd)} spent + ${usd(status.reservedUsd)} reserved by requests in flight of the ${usd(status.limitUsd)} limit${window} leaves ${usd(Math.max(0, status.limitUsd - status.spentUsd - status.reservedUsd))}`
}

/**
 * What a token-priced call may add to a channel's expected price (which counts the image only): the
 * prompt (estimated twice over), reference images, and up to 512 text and thinking tokens. Flat-priced
 * channels bill none of it; for them it is a small over-reservation. @category pricing
 */
export const allowanceOf = (request: ChannelRequest): number =>
  costFromUsage(request.model, {
    inputTokens:
      2 * estimatePromptTokens(request.prompt) +
      (request.images?.length ?? 0) * (findModel(request.model)?.prices.inputImageTokens ?? 0),
    outputTextTokens: 512,
  })

/**
 * What a plan could cost on one call: the dearest candidate's expected price (a failover may land there)
 * plus {@link allowanceOf} the tokens beside the image. This is what a budget reserves. @category pricing
 */
export const reservationOf = (
  plan: { readonly candidates: ReadonlyArray<string>; readonly channelRequest: ChannelRequest },
  channels: ReadonlyMap<string, Channel>,
): number => {
  const most = plan.candidates.reduce((most, name) => {
    const channel = channels.get(name)
    return channel === undefined ? most : Math.max(most, channel.price(plan.channelRequest))
  }, 0)
  return most === 0 ? 0 : Math.round((most + allowanceOf(plan.channelRequest)) * 1e6) / 1e6
}

/**
 * A run-level cap (`peel run … --max-spend USD`): before a request starts, the most it could cost is
 * reserved (for a request of `n` images, `n` times that: one reservation for all its ids); when each id
 * ends, what it cost is settled. A request that could pass the cap waits while others are in flight (one
 * may cost less than it reserved — a cache hit costs nothing) and is refused once nothing is: the run then
 * starts no more requests. The run never spends more than the cap as long as no request costs more than
 * it reserved.
 *
 * @category run caps
 */
export interface RunCap {
  readonly limitUsd: number
  /**
   * Reserve `usdEach` for each of `ids` (the request's images), as one reservation; `false` when it could
   * pass the cap with nothing in flight (stop starting requests).
   */
  readonly admit: (ids: ReadonlyArray<string>, usdEach: number) => Effect.Effect<boolean>
  /** What one id cost; its request's reservation is settled once every id of it has ended. */
  readonly settle: (id: string, actualUsd: number) => void
  /** The refusal that stopped the run, if one did. */
  readonly refused: () => Refused | undefined
  readonly status: () => Status
}

/** A run-level cap in memory. @category run caps */
export const runCap = (limitUsd: number, pollMillis = 10): RunCap => {
  const ledger = memory({ limitUsd, windowMillis: Number.POSITIVE_INFINITY })
  interface Group {
    readonly reservation: Reservation
    readonly waiting: Set<string>
    actualUsd: number
  }
  const groups = new Set<Group>()
  const byId = new Map<string, Group>()
  let refused: Refused | undefined
  return {
    limitUsd,
    admit: (ids, usdEach) =>
      Effect.gen(function* () {
        while (true) {
          if (refused !== undefined) return false
          const reservation = ledger.reserve(usdEach * ids.length, 0)
          if (!("_tag" in reservation)) {
            const group: Group = { reservation, waiting: new Set(ids), actualUsd: 0 }
            groups.add(group)
            for (const id of ids) byId.set(id, group)
            return true
          }
          if (groups.size === 0) {
            refused = reservation
            return false
          }
          yield* Effect.sleep(pollMillis)
        }
      }),
    settle: (id, actualUsd) => {
      const group = byId.get(id)
      if (group === undefined) return
      byId.delete(id)
      group.waiting.delete(id)
      group.actualUsd += actualUsd
      if (group.waiting.size > 0) return
      groups.delete(group)
      ledger.settle(group.reservation, group.actualUsd)
    },
    refused: () => refused,
    status: () => ledger.status(0),
  }
}
