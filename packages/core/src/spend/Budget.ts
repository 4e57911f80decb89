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
 * The ledger itself is a state service, {@link SpendLedger.SpendLedger} (effectful: reserve, settle,
 * release; reservations leased): memory and a SQLite file ship, and another backend (Redis with a Lua
 * script, Postgres) implements the same four operations. An {@link Account} is one cap over it — what the
 * `budget` stage uses. `effect/persistence`'s `KeyValueStore` has no compare-and-set, which a shared cap
 * needs, so the ledger is its own service. {@link Ledger} is the synchronous form for one cap (a run-level
 * `--max-spend`, tests) over the same rules.
 *
 * @since 0.3.0
 */
import { findModel } from "@peel/contract/Catalog"
import type { Channel, ChannelRequest } from "@peel/contract/Channel"
import { costFromUsage, estimatePromptTokens } from "@peel/contract/Pricing"
import { Clock, Effect } from "effect"
import * as SpendLedger from "../state/SpendLedger.ts"
import * as SpendLedgerSqlite from "../state/SpendLedgerSqlite.ts"
import * as Money from "./Money.ts"

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

/** An open reservation (see {@link SpendLedger.Reservation}). @category model */
export type Reservation = SpendLedger.Reservation

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
  /** The ledger could not be asked (its store is unreachable and the budget fails closed). */
  readonly unavailable?: string | undefined
}

/**
 * One cap over a {@link SpendLedger.SpendLedgerShape}: what the `budget` stage reserves against. Every
 * operation is one step of the ledger, so it is as atomic as the ledger is.
 *
 * @category model
 */
export interface Account {
  readonly cap: Cap
  readonly describe: string
  /** Reserve `usd` in the window holding now, or say why not. */
  readonly reserve: (usd: number) => Effect.Effect<Reservation | Refused>
  /** Replace a reservation with what the request really cost. */
  readonly settle: (reservation: Reservation, actualUsd: number) => Effect.Effect<void>
  /** Drop a reservation: nothing was spent. */
  readonly release: (reservation: Reservation) => Effect.Effect<void>
  readonly status: Effect.Effect<Status>
}

/** Default time a reservation holds if its process never settles it. @category defaults */
export const defaultLeaseMillis = 60 * 60 * 1000

const windowOf = (cap: Cap, now: number): number =>
  Number.isFinite(cap.windowMillis) ? Math.floor(now / cap.windowMillis) : 0

const statusOf = (cap: Cap, window: number, balance: SpendLedger.Balance): Status => ({
  limitUsd: cap.limitUsd,
  spentUsd: fromMicros(balance.spentMicros),
  reservedUsd: fromMicros(balance.reservedMicros),
  windowStart: Number.isFinite(cap.windowMillis) ? window * cap.windowMillis : 0,
  windowEnd: Number.isFinite(cap.windowMillis) ? (window + 1) * cap.windowMillis : Number.POSITIVE_INFINITY,
})

/**
 * A cap kept in a spend ledger service under a budget name: windows aligned to the epoch, reservations
 * leased for `leaseMillis`.
 *
 * @category constructors
 */
export const account = (
  ledger: SpendLedger.SpendLedgerShape,
  cap: Cap,
  budget: string,
  leaseMillis: number = defaultLeaseMillis,
): Account => {
  const limit = toMicros(cap.limitUsd)
  const current = Effect.map(Clock.currentTimeMillis, (now) => windowOf(cap, now))
  return {
    cap,
    describe: `${ledger.describe} (${budget})`,
    reserve: (usd) =>
      Effect.flatMap(current, (index) =>
        Effect.map(
          ledger.reserve({ budget, index }, toMicros(usd), limit, leaseMillis),
          (reserved): Reservation | Refused =>
            "_tag" in reserved
              ? {
                  _tag: "Refused",
                  status: statusOf(cap, index, reserved.balance),
                  requestedUsd: usd,
                  ...(reserved.unavailable === undefined ? {} : { unavailable: reserved.unavailable }),
                }
              : reserved,
        ),
      ),
    settle: (reservation, actualUsd) => ledger.settle(reservation, toMicros(actualUsd)),
    release: ledger.release,
    status: Effect.flatMap(current, (index) =>
      Effect.map(ledger.balance({ budget, index }), (balance) => statusOf(cap, index, balance)),
    ),
  }
}

/** A spend ledger for one cap, synchronous (a run-level cap, tests). All operations are atomic. @category model */
export interface Ledger {
  readonly cap: Cap
  readonly describe: string
  /** Reserve `usd` in the window holding `now`, or say why not. */
  readonly reserve: (usd: number, now: number) => Reservation | Refused
  /** Replace a reservation with what the request really cost. */
  readonly settle: (reservation: Reservation, actualUsd: number) => void
  /** Drop a reservation: nothing was spent. */
  readonly release: (reservation: Reservation) => void
  readonly status: (now: number) => Status
  readonly close: () => void
}

const overBook = (book: SpendLedger.Book, cap: Cap, budget: string, leaseMillis: number, describe: string): Ledger => {
  const limit = toMicros(cap.limitUsd)
  return {
    cap,
    describe,
    reserve: (usd, now) => {
      const index = windowOf(cap, now)
      const reserved = book.reserve({ budget, index }, toMicros(usd), limit, now, leaseMillis)
      return "_tag" in reserved
        ? { _tag: "Refused", status: statusOf(cap, index, reserved.balance), requestedUsd: usd }
        : reserved
    },
    settle: (reservation, actualUsd) => book.settle(reservation, toMicros(actualUsd)),
    release: (reservation) => book.release(reservation),
    status: (now) => {
      const index = windowOf(cap, now)
      return statusOf(cap, index, book.balance({ budget, index }, now))
    },
    close: () => book.close(),
  }
}

/**
 * A ledger in this process (tests, run-level `--max-spend`). Its reservations never expire: a run-level
 * cap lives as long as its run.
 *
 * @category constructors
 */
export const memory = (cap: Cap): Ledger =>
  overBook(SpendLedger.memoryBook(), cap, "default", Number.POSITIVE_INFINITY, "memory")

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
export const sqlite = (cap: Cap, options: SqliteOptions): Ledger =>
  overBook(
    SpendLedgerSqlite.book(options.path),
    cap,
    options.name,
    options.leaseMillis ?? defaultLeaseMillis,
    `sqlite ${options.path} (${options.name})`,
  )

/** A synchronous ledger as an {@link Account} (time from the `Clock`). @category constructors */
export const fromLedger = (ledger: Ledger): Account => ({
  cap: ledger.cap,
  describe: ledger.describe,
  reserve: (usd) => Effect.map(Clock.currentTimeMillis, (now) => ledger.reserve(usd, now)),
  settle: (reservation, actualUsd) => Effect.sync(() => ledger.settle(reservation, actualUsd)),
  release: (reservation) => Effect.sync(() => ledger.release(reservation)),
  status: Effect.map(Clock.currentTimeMillis, (now) => ledger.status(now)),
})

/** A refusal's message, with the numbers. @category messages */
export const refusalMessage = (refused: Refused, what = "budget"): string => {
  const status = refused.status
  const usd = Money.format
  if (refused.unavailable !== undefined)
    return `${what}: the spend ledger cannot be reached (${refused.unavailable}), so no request starts without a reservation (set state.failOpen: true to spend against this process's own ledger meanwhile)`
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
