/**
 * The simulator's ledger: every call (route, model, size, aspect ratio, status, outcome, whether the
 * client went away first, latency) and every billed image with its price. Served at
 * `GET /_simulator/ledger`; tests and benchmarks use it to count upstream calls and to check Peel's own
 * cost accounting. Keys are never recorded.
 *
 * @since 0.1.0
 */
export interface LedgerCall {
  readonly seq: number
  readonly route: string
  readonly model: string
  readonly size: string
  readonly aspectRatio: string
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
  readonly calls: ReadonlyArray<LedgerCall>
  readonly billed: ReadonlyArray<LedgerBill>
  readonly totals: { readonly calls: number; readonly billedImages: number; readonly billedUsd: number }
}

export class Ledger {
  private calls: Array<LedgerCall> = []
  private billed: Array<LedgerBill> = []
  private seq = 0

  open(entry: Omit<LedgerCall, "seq" | "status" | "outcome" | "clientWentAway" | "latencyMs">): LedgerCall {
    const call: LedgerCall = {
      seq: ++this.seq,
      ...entry,
      status: 0,
      outcome: "pending",
      clientWentAway: false,
      latencyMs: 0,
    }
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
    this.billed.push({ seq: call.seq, route: call.route, model, size, aspectRatio, usd, tier })
  }

  reset(): void {
    this.calls = []
    this.billed = []
  }

  toJson(): LedgerJson {
    const billedUsd = Math.round(this.billed.reduce((sum, bill) => sum + bill.usd, 0) * 1e6) / 1e6
    return {
      calls: this.calls.map((call) => ({ ...call })),
      billed: this.billed.map((bill) => ({ ...bill })),
      totals: { calls: this.calls.length, billedImages: this.billed.length, billedUsd },
    }
  }
}
