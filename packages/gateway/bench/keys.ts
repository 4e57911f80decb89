/**
 * What virtual keys add to a request: authenticate (hash + one store read) + admit (one more read, a budget
 * reservation, an rpm start) + settle, over the stores `peel serve` uses by default (the state folder's
 * SQLite file, rate limits in memory), one request after another and 32 at once. Prints microseconds per
 * request (p50 / p99 / mean). Run: `cd packages/gateway && node bench/keys.ts`.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { RateLimits, SpendLedgerSqlite, VirtualKeys, VirtualKeysSqlite, WorkJournal } from "@peel/core"
import { Effect } from "effect"
import { VirtualKeyPolicy } from "../src/index.ts"

const requests = 5000
const file = WorkJournal.fileIn(join(mkdtempSync(join(tmpdir(), "peel-keys-bench-")), "state"))

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const report = (label: string, micros: Array<number>) => {
  micros.sort((a, b) => a - b)
  const mean = micros.reduce((sum, value) => sum + value, 0) / micros.length
  console.log(
    `${label.padEnd(44)} p50 ${percentile(micros, 50).toFixed(1).padStart(7)} µs   p99 ${percentile(micros, 99).toFixed(1).padStart(7)} µs   mean ${mean.toFixed(1).padStart(7)} µs`,
  )
}

await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const keys = yield* VirtualKeysSqlite.make(file)
      const ledger = yield* SpendLedgerSqlite.make(file)
      const policy = VirtualKeyPolicy.make(keys, ledger, yield* RateLimits.makeMemory)
      // a store with 1,000 keys, the one used with every limit
      for (let index = 0; index < 999; index++) yield* VirtualKeys.create(keys, `filler-${index}`, {})
      const { secret } = yield* VirtualKeys.create(keys, "bench", {
        budget: { limitUsd: 1_000_000, window: "1d" },
        rpm: 10_000_000,
        models: ["gemini-3-pro-image"],
      })
      const request = { prompt: "a lighthouse", model: "gemini-3-pro-image" }
      const one = Effect.gen(function* () {
        const started = performance.now()
        const caller = yield* policy.authenticate(secret)
        const admission = yield* policy.admit(caller, request, 0.134)
        yield* admission.settle(0.134)
        return (performance.now() - started) * 1000
      })
      for (let index = 0; index < 500; index++) yield* one // warm-up
      const sequential: Array<number> = []
      for (let index = 0; index < requests; index++) sequential.push(yield* one)
      report(`SQLite stores, one at a time (${requests})`, sequential)
      const concurrent = yield* Effect.all(
        Array.from({ length: requests }, () => one),
        { concurrency: 32 },
      )
      report(`SQLite stores, 32 at once (${requests})`, concurrent)
      const unknown = Array.from({ length: requests }, () => 0)
      for (let index = 0; index < requests; index++) {
        const started = performance.now()
        yield* Effect.exit(policy.authenticate(VirtualKeys.newSecret()))
        unknown[index] = (performance.now() - started) * 1000
      }
      report(`unknown key refused (${requests})`, unknown)
    }),
  ),
)
