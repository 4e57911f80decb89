import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Simulator } from "../src/index.ts"

describe("Simulator.layer", () => {
  it("starts with the Layer and stops when its Scope closes", async () => {
    const url = await Effect.runPromise(
      Effect.gen(function* () {
        const sim = yield* Simulator.Simulator
        const health = yield* Effect.promise(() =>
          fetch(`${sim.url}/_simulator/health`).then((response) => response.status),
        )
        expect(health).toBe(200)
        return sim.url
      }).pipe(Effect.provide(Simulator.layer({ port: 0 }))),
    )
    const after = await fetch(`${url}/_simulator/health`).then(
      () => "answered",
      () => "closed",
    )
    expect(after).toBe("closed")
  })
})
