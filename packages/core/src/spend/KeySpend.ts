/**
 * A virtual key's spend, kept in the spend ledger under the key's own budget name (`key:ID`): its budget
 * per window when it has one, otherwise one window forever with no cap (so `peel keys list` still shows
 * what it spent). The gateway reserves a request's expected price here before the call and settles the
 * real cost after; `peel keys list` and the admin API read the window's status.
 *
 * @since 0.5.0
 */
import { Effect } from "effect"
import type * as SpendLedger from "../state/SpendLedger.ts"
import * as VirtualKeys from "../state/VirtualKeys.ts"
import * as Budget from "./Budget.ts"

/** A reservation's lease when its gateway dies before settling: longer than any request may run. @category defaults */
export const defaultLeaseMillis = 15 * 60 * 1000

/** The key's cap: its budget, or no limit in one window forever. @category model */
export const capOf = (record: VirtualKeys.KeyRecord): Budget.Cap =>
  record.limits.budget === undefined
    ? { limitUsd: Number.POSITIVE_INFINITY, windowMillis: Number.POSITIVE_INFINITY }
    : { limitUsd: record.limits.budget.limitUsd, windowMillis: VirtualKeys.windowMillis(record.limits.budget) }

/** The key's account in `ledger`. @category constructors */
export const account = (
  ledger: SpendLedger.SpendLedgerShape,
  record: VirtualKeys.KeyRecord,
  leaseMillis: number = defaultLeaseMillis,
): Budget.Account => Budget.account(ledger, capOf(record), VirtualKeys.spendName(record), leaseMillis)

/** One key as `peel keys list --json` and the admin API show it: never the secret, nor its hash. @category model */
export interface KeyView {
  readonly id: string
  readonly name: string
  readonly prefix: string
  readonly status: "active" | "revoked"
  /** ISO 8601. */
  readonly createdAt: string
  readonly revokedAt?: string
  readonly budget?: VirtualKeys.KeyBudget
  readonly rpm?: number
  readonly models?: ReadonlyArray<string>
  /** Settled spend in the current window (all time without a budget). */
  readonly spentUsd: number
  /** Reserved by requests in flight. */
  readonly reservedUsd: number
}

/** The view of a key, with its spend read from `ledger`. @category constructors */
export const view = (ledger: SpendLedger.SpendLedgerShape, record: VirtualKeys.KeyRecord): Effect.Effect<KeyView> =>
  Effect.map(account(ledger, record).status, (status) => ({
    id: record.id,
    name: record.name,
    prefix: record.prefix,
    status: record.revokedAt === undefined ? "active" : "revoked",
    createdAt: new Date(record.createdAt).toISOString(),
    ...(record.revokedAt === undefined ? {} : { revokedAt: new Date(record.revokedAt).toISOString() }),
    ...record.limits,
    spentUsd: status.spentUsd,
    reservedUsd: status.reservedUsd,
  }))
