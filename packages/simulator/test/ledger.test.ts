import { describe, expect, it } from "vitest"
import { Simulator } from "../src/index.ts"
import { Ledger } from "../src/Ledger.ts"

const call = (ledger: Ledger, index: number) =>
  ledger.open({ route: index % 2 === 0 ? "gemini" : "openrouter", model: "m", size: "1K", aspectRatio: "1:1" })

describe("Ledger", () => {
  it("keeps the last N calls and bills, oldest first, with exact totals over everything", () => {
    const ledger = new Ledger(3)
    const prices = [0.134, 0.24, 0.05, 0.1, 0.134, 0.039, 0.24]
    for (const [index, usd] of prices.entries()) ledger.bill(call(ledger, index), usd, "standard")
    call(ledger, 7)
    const json = ledger.toJson()
    expect(json.calls.map((entry) => entry.seq)).toEqual([6, 7, 8])
    expect(json.billed.map((entry) => entry.seq)).toEqual([5, 6, 7])
    expect(json.totals).toEqual({
      calls: 8,
      billedImages: 7,
      billedUsd: Math.round(prices.reduce((sum, usd) => sum + usd, 0) * 1e6) / 1e6,
    })
    expect(json.retained).toEqual({ limit: 3, droppedCalls: 5, droppedBilled: 4 })
  })

  it("updates a call after it was opened (status, outcome) and resets to zero", () => {
    const ledger = new Ledger(2)
    const first = call(ledger, 0)
    first.status = 200
    first.outcome = "ok"
    expect(ledger.toJson().calls[0]).toMatchObject({ seq: 1, status: 200, outcome: "ok" })
    ledger.reset()
    expect(ledger.toJson()).toEqual({
      calls: [],
      billed: [],
      totals: { calls: 0, billedImages: 0, billedUsd: 0 },
      retained: { limit: 2, droppedCalls: 0, droppedBilled: 0 },
    })
    expect(call(ledger, 1).seq).toBe(2)
  })

  it("rejects a limit that is not a non-negative integer; 0 keeps totals only", () => {
    expect(() => new Ledger(-1)).toThrow(/non-negative integer/)
    expect(() => new Ledger(1.5)).toThrow(/non-negative integer/)
    const ledger = new Ledger(0)
    ledger.bill(call(ledger, 0), 0.05, "flat")
    expect(ledger.toJson()).toMatchObject({ calls: [], billed: [], totals: { calls: 1, billedImages: 1 } })
  })

  it("serves the bounded ledger over HTTP (Options.ledgerLimit)", async () => {
    const sim = await Simulator.start({ port: 0, ledgerLimit: 2 })
    try {
      for (let index = 0; index < 3; index++) {
        const response = await fetch(`${sim.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: "Bearer k", "content-type": "application/json" },
          body: JSON.stringify({ model: "gemini-3-pro-image", messages: [{ role: "user", content: `p${index}` }] }),
        })
        expect(response.status).toBe(200)
      }
      const served = await (await fetch(`${sim.url}/_simulator/ledger`)).json()
      expect(served.calls).toHaveLength(2)
      expect(served.totals).toEqual({ calls: 3, billedImages: 3, billedUsd: 0.15 })
      expect(served.retained).toEqual({ limit: 2, droppedCalls: 1, droppedBilled: 1 })
    } finally {
      await sim.stop()
    }
  })
})
