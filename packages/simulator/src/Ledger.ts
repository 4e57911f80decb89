/**
 * The simulator's ledger: every call (route, model, size, aspect ratio, status, outcome, whether the
 * client went away first, latency) and every billed image with its price. Served at
 * `GET /_simulator/ledger`; tests and benchmarks use it to count upstream calls and to check Peel's own
 * cost accounting. Keys are never recorded.
 *
 * Totals are exact over the whole run (since the last reset); the per-call and per-bill lists keep only
 * the most recent `limit` entries each (default 10,000), so a long-running simulator stays small.
 * `retained` says how many older entries were dropped.
 *
 * @since 0.1.0
 */
export interface LedgerCall {
  readonly seq: number
  readonly route: string
  readonly model: string
  readonly size: string
  readonly aspectRatio: string
  /** Reference images the call carried (absent when none). */
  readonly referenceImages?: number
  /** The seed the call asked for, if any. */
  readonly seed?: number
  status: number
  outcome: string
  clientWentAway: boolean
  latencyMs: number
}

export interface LedgerBill {
  readonly seq: number
  readonly route: string
  readonly model: string
  readonly size: string
  readonly aspectRatio: string
  readonly usd: number
  readonly tier: "standard" | "batch" | "flat"
}

export interface LedgerJson {
  /** The most recent calls, oldest first (at most `retained.limit`). */
  readonly calls: ReadonlyArray<LedgerCall>
  /** The most recent billed images, oldest first (at most `retained.limit`). */
  readonly billed: ReadonlyArray<LedgerBill>
  /** Exact since the last reset, including dropped entries. */
  readonly totals: { readonly calls: number; readonly billedImages: number; readonly billedUsd: number }
  /** How many entries each list may hold, and how many older ones were dropped from it. */
  readonly retained: { readonly limit: number; readonly droppedCalls: number; readonly droppedBilled: number }
}

/** Entries kept per list unless `Options.ledgerLimit` says otherwise. */
export const defaultLimit = 10_000

/** The last `limit` items pushed, oldest first. */
class Ring<A> {
  private items: Array<A> = []
  private start = 0
  dropped = 0
  private readonly limit: number

  constructor(limit: number) {
    this.limit = limit
  }

  push(item: A): void {
    if (this.items.length < this.limit) {
      this.items.push(item)
      return
    }
    this.dropped++
    if (this.limit === 0) return
    this.items[this.start] = item
    this.start = (this.start + 1) % this.limit
  }

  map<B>(f: (item: A) => B): Array<B> {
    const out: Array<B> = new Array(this.items.length)
    for (let index = 0; index < this.items.length; index++)
      out[index] = f(this.items[(this.start + index) % this.items.length]!)
    return out
  }
}

export class Ledger {
  private calls: Ring<LedgerCall>
  private billed: Ring<LedgerBill>
  private seq = 0
  private callCount = 0
  private billCount = 0
  private usd = 0
  private readonly limit: number

  /** `limit`: entries kept per list, a non-negative integer. */
  constructor(limit: number = defaultLimit) {
    if (!Number.isSafeInteger(limit) || limit < 0)
      throw new Error(`ledger limit must be a non-negative integer, got ${limit}`)
    this.limit = limit
    this.calls = new Ring(limit)
    this.billed = new Ring(limit)
  }

  open(entry: Omit<LedgerCall, "seq" | "status" | "outcome" | "clientWentAway" | "latencyMs">): LedgerCall {
    const call: LedgerCall = {
      seq: ++this.seq,
      ...entry,
      status: 0,
      outcome: "pending",
      clientWentAway: false,
      latencyMs: 0,
    }
    this.callCount++
    this.calls.push(call)
    return call
  }

  bill(
    call: LedgerCall,
    usd: number,
    tier: LedgerBill["tier"],
    model = call.model,
    size = call.size,
    aspectRatio = call.aspectRatio,
  ): void {
    this.billCount++
    // Summed in billing order, exactly as summing the full list would.
    this.usd += usd
    this.billed.push({ seq: call.seq, route: call.route, model, size, aspectRatio, usd, tier })
  }

  reset(): void {
    this.calls = new Ring(this.limit)
    this.billed = new Ring(this.limit)
    this.callCount = 0
    this.billCount = 0
    this.usd = 0
  }

  toJson(): LedgerJson {
    return {
      calls: this.calls.map((call) => ({ ...call })),
      billed: this.billed.map((bill) => ({ ...bill })),
      totals: {
        calls: this.callCount,
        billedImages: this.billCount,
        billedUsd: Math.round(this.usd * 1e6) / 1e6,
      },
      retained: { limit: this.limit, droppedCalls: this.calls.dropped, droppedBilled: this.billed.dropped },
    }
  }
}
