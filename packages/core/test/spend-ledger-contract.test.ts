/**
 * The spend ledger's contract (state/SpendLedger.ts): one suite, run against the memory Layer and the
 * SQLite file, on the TestClock. Reserve is atomic against the cap; settle and release free the
 * reservation (the reserved amount returns to 0 — not only noticed by a run cap); a reservation never
 * settled stops counting at its expiry; two connections to one file share the cap.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, type Scope } from "effect"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll } from "vitest"
import { type PostgresServer, startPostgres } from "../../testkit/src/Postgres.ts"
import { type RedisServer, startRedis } from "../../testkit/src/RedisServer.ts"
import { Budget, Pipeline, Runner, State } from "../src/index.ts"
import * as RedisState from "../src/state/redis/RedisState.ts"
import * as SpendLedger from "../src/state/SpendLedger.ts"
import * as SpendLedgerSqlite from "../src/state/SpendLedgerSqlite.ts"

const day = { budget: "daily", index: 20_000 }
const hour = 60 * 60 * 1000
const isRefused = (value: SpendLedger.Reservation | SpendLedger.Refused): value is SpendLedger.Refused =>
  "_tag" in value

const reserved = (value: SpendLedger.Reservation | SpendLedger.Refused): SpendLedger.Reservation => {
  if (isRefused(value)) throw new Error(`refused: ${JSON.stringify(value.balance)}`)
  return value
}

const contract = (
  name: string,
  connect: () => Effect.Effect<SpendLedger.SpendLedgerShape, never, Scope.Scope>,
  /** A second connection to the same store, when it can be shared. */
  share?: () => Effect.Effect<
    readonly [SpendLedger.SpendLedgerShape, SpendLedger.SpendLedgerShape],
    never,
    Scope.Scope
  >,
) =>
  describe(`spend ledger contract: ${name}`, () => {
    it.effect("reserves up to the cap and refuses past it, with the balance", () =>
      Effect.gen(function* () {
        const ledger = yield* connect()
        const first = reserved(yield* ledger.reserve(day, 600_000, 1_000_000, hour))
        expect(first.window).toEqual(day)
        expect(first.micros).toBe(600_000)
        reserved(yield* ledger.reserve(day, 400_000, 1_000_000, hour))
        const refused = yield* ledger.reserve(day, 1, 1_000_000, hour)
        expect(isRefused(refused) && refused.balance).toEqual({ spentMicros: 0, reservedMicros: 1_000_000 })
        // another window and another budget are other money
        reserved(yield* ledger.reserve({ ...day, index: day.index + 1 }, 1_000_000, 1_000_000, hour))
        reserved(yield* ledger.reserve({ ...day, budget: "other" }, 1_000_000, 1_000_000, hour))
      }).pipe(Effect.scoped),
    )

    it.effect("settle replaces the reservation with the spend, and the reserved amount returns to 0", () =>
      Effect.gen(function* () {
        const ledger = yield* connect()
        const one = reserved(yield* ledger.reserve(day, 500_000, 1_000_000, hour))
        const two = reserved(yield* ledger.reserve(day, 300_000, 1_000_000, hour))
        expect(yield* ledger.balance(day)).toEqual({ spentMicros: 0, reservedMicros: 800_000 })
        yield* ledger.settle(one, 120_000)
        expect(yield* ledger.balance(day)).toEqual({ spentMicros: 120_000, reservedMicros: 300_000 })
        yield* ledger.release(two)
        expect(yield* ledger.balance(day)).toEqual({ spentMicros: 120_000, reservedMicros: 0 })
        // what is freed can be reserved again: 880,000 left exactly
        reserved(yield* ledger.reserve(day, 880_000, 1_000_000, hour))
        expect(isRefused(yield* ledger.reserve(day, 1, 1_000_000, hour))).toBe(true)
      }).pipe(Effect.scoped),
    )

    it.effect("reserve is atomic: 50 at once against room for 10, exactly 10 get through", () =>
      Effect.gen(function* () {
        const ledger = yield* connect()
        const results = yield* Effect.all(
          Array.from({ length: 50 }, () => ledger.reserve(day, 100_000, 1_000_000, hour)),
          { concurrency: "unbounded" },
        )
        expect(results.filter((result) => !isRefused(result)).length).toBe(10)
        expect(yield* ledger.balance(day)).toEqual({ spentMicros: 0, reservedMicros: 1_000_000 })
      }).pipe(Effect.scoped),
    )

    it.effect("a reservation never settled stops counting when it expires; a late settle still counts", () =>
      Effect.gen(function* () {
        const ledger = yield* connect()
        const lost = reserved(yield* ledger.reserve(day, 900_000, 1_000_000, 60_000))
        expect(isRefused(yield* ledger.reserve(day, 200_000, 1_000_000, 60_000))).toBe(true)
        yield* TestClock.adjust("59999 millis")
        expect((yield* ledger.balance(day)).reservedMicros).toBe(900_000)
        yield* TestClock.adjust("1 millis")
        expect((yield* ledger.balance(day)).reservedMicros).toBe(0)
        reserved(yield* ledger.reserve(day, 200_000, 1_000_000, 60_000))
        // the process was only slow: its spend happened, and is recorded in its own window
        yield* ledger.settle(lost, 700_000)
        expect(yield* ledger.balance(day)).toEqual({ spentMicros: 700_000, reservedMicros: 200_000 })
      }).pipe(Effect.scoped),
    )

    if (share !== undefined)
      it.effect("two connections to one store share the cap", () =>
        Effect.gen(function* () {
          const [one, two] = yield* share()
          const mine = reserved(yield* one.reserve(day, 700_000, 1_000_000, hour))
          expect(isRefused(yield* two.reserve(day, 400_000, 1_000_000, hour))).toBe(true)
          yield* one.settle(mine, 100_000)
          expect(yield* two.balance(day)).toEqual({ spentMicros: 100_000, reservedMicros: 0 })
          reserved(yield* two.reserve(day, 900_000, 1_000_000, hour))
        }).pipe(Effect.scoped),
      )
  })

const freshFile = () => join(mkdtempSync(join(tmpdir(), "peel-ledger-")), "ledger.sqlite")

contract("memory", () => SpendLedger.makeMemory)
contract(
  "SQLite file",
  () => SpendLedgerSqlite.make(freshFile()),
  () =>
    Effect.gen(function* () {
      const file = freshFile()
      return [yield* SpendLedgerSqlite.make(file), yield* SpendLedgerSqlite.make(file)] as const
    }),
)

let server: PostgresServer
let databases = 0
beforeAll(async () => {
  server = await startPostgres()
}, 60_000)
afterAll(() => server?.close())
/** A fresh database on the test server; a ledger over it. */
const postgresLedger = (url: Promise<string>) =>
  Effect.flatMap(
    Effect.promise(() => url),
    (url) => Effect.orDie(State.makeSpendLedgerPostgres(url)),
  )
contract(
  "Postgres",
  () => postgresLedger(server.database(`ledger_${++databases}`)),
  () =>
    Effect.gen(function* () {
      const url = server.database(`ledger_${++databases}`)
      return [yield* postgresLedger(url), yield* postgresLedger(url)] as const
    }),
)

// A real redis-server on a loopback port; each test its own key prefix; each connection its own client
// (a worker), with no fallback (a Redis failure is a defect).
let redis: RedisServer
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis?.close()
})
let prefixes = 0
const redisLedger = (prefix: string) =>
  Effect.map(
    Layer.build(RedisState.layerDirect({ prefix }).pipe(Layer.provide(Layer.orDie(RedisState.layerClient(redis.url))))),
    (context) => Context.get(context, SpendLedger.SpendLedger),
  )
contract(
  "redis",
  () => redisLedger(`l${process.pid}-${prefixes++}:`),
  () =>
    Effect.gen(function* () {
      const prefix = `l${process.pid}-${prefixes++}:`
      return [yield* redisLedger(prefix), yield* redisLedger(prefix)] as const
    }),
)

describe("Budget.memory (the run cap's synchronous ledger)", () => {
  it("frees a reservation on settle and on release: the reserved amount returns to 0", () => {
    const ledger = Budget.memory({ limitUsd: 1, windowMillis: Number.POSITIVE_INFINITY })
    const one = ledger.reserve(0.4, 0)
    const two = ledger.reserve(0.4, 0)
    if ("_tag" in one || "_tag" in two) throw new Error("refused")
    expect(ledger.status(0).reservedUsd).toBeCloseTo(0.8, 9)
    ledger.settle(one, 0.1)
    expect(ledger.status(0)).toMatchObject({ spentUsd: 0.1, reservedUsd: 0.4 })
    ledger.release(two)
    expect(ledger.status(0)).toMatchObject({ spentUsd: 0.1, reservedUsd: 0 })
  })

  it("the budget account over the service reports the window's status", () =>
    Effect.runPromise(
      Effect.gen(function* () {
        const account = Budget.account(yield* SpendLedger.makeMemory, { limitUsd: 2, windowMillis: 86_400_000 }, "b")
        const reservation = yield* account.reserve(1.5)
        if ("_tag" in reservation) throw new Error("refused")
        const refused = yield* account.reserve(1)
        expect("_tag" in refused && refused.status).toMatchObject({ limitUsd: 2, spentUsd: 0, reservedUsd: 1.5 })
        yield* account.settle(reservation, 0.25)
        expect(yield* account.status).toMatchObject({ spentUsd: 0.25, reservedUsd: 0 })
      }),
    ))
})

describe("the budget stage takes its ledger from the runner's state", () => {
  const fixtures = join(import.meta.dirname, "fixtures")
  const pipelineFile = () => {
    const path = join(mkdtempSync(join(tmpdir(), "peel-budget-state-")), "pipeline.yaml")
    writeFileSync(
      path,
      [
        "version: 1",
        "name: budget-state",
        "channels:",
        `  main: { plugin: ${join(fixtures, "fixture-plugin.ts")}, price: 0.134 }`,
        "stages:",
        "  - budget: { limit: 0.3, window: 1d }",
        "  - generate: { timeout: 5s }",
      ].join("\n"),
    )
    return path
  }
  /** Two runners (two processes' worth) over `state`; each makes two images; how many got through. */
  const twoRunners = (state: () => Layer.Layer<State.Services>) =>
    Effect.gen(function* () {
      const path = pipelineFile()
      const made: Array<boolean> = []
      for (const runnerIndex of [1, 2]) {
        const runner = yield* Runner.make(yield* Pipeline.load(path, { env: {} }), { state: state() })
        for (const id of ["a", "b"])
          made.push(Exit.isSuccess(yield* Effect.exit(runner.run({ prompt: `x ${runnerIndex}${id}`, id }))))
      }
      return made
    }).pipe(Effect.scoped)

  it.effect("runners sharing one state share the cap: two images of 0.134 fit in 0.3, the third is refused", () =>
    Effect.gen(function* () {
      const shared = yield* Layer.build(State.layerMemory)
      expect(yield* twoRunners(() => Layer.succeedContext(shared))).toEqual([true, true, false, false])
    }).pipe(Effect.scoped),
  )

  it.effect("with a SQLite spend ledger in the state, runners on one file share it too", () =>
    Effect.gen(function* () {
      const file = freshFile()
      const state = () => Layer.merge(State.layerMemory, SpendLedgerSqlite.layer(file))
      expect(yield* twoRunners(state)).toEqual([true, true, false, false])
    }),
  )

  it.effect("separate states do not share: each runner has its own 0.3", () =>
    Effect.gen(function* () {
      expect(yield* twoRunners(() => State.layerMemory)).toEqual([true, true, true, true])
    }),
  )
})
