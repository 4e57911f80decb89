/**
 * A virtual key's spend, kept in the spend ledger under the key's own budget name (`key:ID`): its budget
 * per window when it has one, otherwise one window forever with no cap (so `peel keys list` still shows
 * what it spent). The gateway reserves a request's expected price here before the call and settles the
 * real cost after; `peel keys list` and the admin API read the window's status.
 *
 * @since 0.5.0
 */
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
