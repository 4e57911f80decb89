/**
 * The state services' contract: ONE suite every implementation must pass — the memory Layers Peel ships,
 * and a second implementation over a SQLite file (test/state/sqlite-state.ts), standing in for the network
 * stores (Redis, Postgres) the next issues add. On the TestClock: rules about time are checked exactly.
 * Then: two runners given the same state share it (a pause set by one is seen by the other), through
 * memory and through two SQLite instances opened on one file.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Context, Deferred, Duration, Effect, Exit, Fiber, Layer } from "effect"
import { CircuitBreaker, Redis } from "effect/persistence"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll } from "vitest"
import { type RedisServer, startRedis } from "../../../testkit/src/RedisServer.ts"
import { Pipeline, Runner, State } from "../../src/index.ts"
import * as Breakers from "../../src/state/Breakers.ts"
import * as ChannelStats from "../../src/state/ChannelStats.ts"
import * as Concurrency from "../../src/state/Concurrency.ts"
import * as HedgeBudget from "../../src/state/HedgeBudget.ts"
import * as QuotaPauses from "../../src/state/QuotaPauses.ts"
import * as RateLimits from "../../src/state/RateLimits.ts"
import * as RedisState from "../../src/state/redis/RedisState.ts"
import * as SpendLedgerSqlite from "../../src/state/SpendLedgerSqlite.ts"
import * as Fixture from "../fixtures/fixture-plugin.ts"
import * as SqliteBreakers from "./sqlite-breakers.ts"
import * as SqliteState from "./sqlite-state.ts"

type Services =
  | Breakers.Breakers
  | RateLimits.RateLimits
  | QuotaPauses.QuotaPauses
  | Concurrency.Concurrency
  | HedgeBudget.HedgeBudget
  | ChannelStats.ChannelStats

const freshFile = () => join(mkdtempSync(join(tmpdir(), "peel-state-")), "state.sqlite")

/**
 * The contract, run against one implementation (a fresh instance per test). `serverTime`: its breakers
 * take time from the server (effect/persistence's Redis store reads Redis `TIME`), which no TestClock
 * moves: the breaker rule is then checked on the real clock, waiting on the circuit's state.
 */
const contractSuite = (name: string, layer: () => Layer.Layer<Services>, options?: { readonly serverTime?: boolean }) =>
  describe(`state contract: ${name}`, () => {
    const run = <A, E>(effect: Effect.Effect<A, E, Services>) => Effect.provide(effect, layer())

    const reasonOf = (exit: Exit.Exit<unknown, unknown>) => {
      const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
      return error?._tag === "Some" && error.value instanceof CircuitBreaker.CircuitBreakerError
        ? error.value.reason._tag
        : Exit.isSuccess(exit)
          ? "ok"
          : "failed"
    }

    if (options?.serverTime === true)
      it.live("Breakers (server time): open after the trip policy's failures, refuse while open, one probe", () =>
        run(
          Effect.scoped(
            Effect.gen(function* () {
              const breaker = yield* CircuitBreaker.make({
                tripPolicy: CircuitBreaker.consecutive(2),
                openDuration: "2 seconds",
              })
              const failing = Effect.fail("503").pipe(breaker.execute({ key: "k" }))
              const ignored = Effect.fail("429").pipe(
                breaker.execute({ key: "k", classify: () => CircuitBreaker.ignored }),
              )
              for (let index = 0; index < 5; index++) expect(reasonOf(yield* Effect.exit(ignored))).toBe("failed")
              expect((yield* breaker.state("k"))._tag).toBe("Closed")
              expect(reasonOf(yield* Effect.exit(failing))).toBe("failed")
              expect(reasonOf(yield* Effect.exit(failing))).toBe("failed")
              const open = yield* breaker.state("k")
              expect(open._tag).toBe("Open")
              expect(open._tag === "Open" && Duration.toMillis(open.retryAfter)).toBeLessThanOrEqual(2000)
              expect(reasonOf(yield* Effect.exit(Effect.succeed(1).pipe(breaker.execute({ key: "k" }))))).toBe(
                "CircuitOpen",
              )
              expect((yield* breaker.state("other"))._tag).toBe("Closed")
              // Wait for the server's clock to end the open time (no deadline: the state says when).
              // (Redis keeps "Open" with nothing left until the next admission moves it to HalfOpen.)
              while (true) {
                const state = yield* breaker.state("k")
                if (state._tag !== "Open" || Duration.toMillis(state.retryAfter) === 0) break
                yield* Effect.sleep("50 millis")
              }
              const gate = yield* Deferred.make<void>()
              const probe = yield* Effect.forkChild(
                Deferred.await(gate).pipe(Effect.as("probed"), breaker.execute({ key: "k" })),
              )
              while (true) {
                const state = yield* breaker.state("k")
                if (state._tag === "HalfOpen" && state.probing) break
                yield* Effect.sleep("10 millis")
              }
              expect(reasonOf(yield* Effect.exit(Effect.succeed(2).pipe(breaker.execute({ key: "k" }))))).toBe(
                "CircuitHalfOpen",
              )
              yield* Deferred.succeed(gate, undefined)
              expect(yield* Fiber.join(probe)).toBe("probed")
              expect((yield* breaker.state("k"))._tag).toBe("Closed")
            }),
          ),
        ),
      )
    else
      it.effect("Breakers: open after the trip policy's failures, refuse while open, one probe when half-open", () =>
        run(
          Effect.scoped(
            Effect.gen(function* () {
              const breaker = yield* CircuitBreaker.make({
                tripPolicy: CircuitBreaker.consecutive(2),
                openDuration: "10 seconds",
              })
              const reasonOf = (exit: Exit.Exit<unknown, unknown>) => {
                const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
                return error?._tag === "Some" && error.value instanceof CircuitBreaker.CircuitBreakerError
                  ? error.value.reason._tag
                  : Exit.isSuccess(exit)
                    ? "ok"
                    : "failed"
              }
              const failing = Effect.fail("503").pipe(breaker.execute({ key: "k" }))
              const ignored = Effect.fail("429").pipe(
                breaker.execute({ key: "k", classify: () => CircuitBreaker.ignored }),
              )
              // Ignored outcomes (a 429) never open it, nor break a streak of failures.
              for (let index = 0; index < 5; index++) expect(reasonOf(yield* Effect.exit(ignored))).toBe("failed")
              expect((yield* breaker.state("k"))._tag).toBe("Closed")
              expect(reasonOf(yield* Effect.exit(failing))).toBe("failed")
              expect(reasonOf(yield* Effect.exit(failing))).toBe("failed")
              const open = yield* breaker.state("k")
              expect(open._tag === "Open" && Duration.toMillis(open.retryAfter)).toBe(10_000)
              expect(reasonOf(yield* Effect.exit(Effect.succeed(1).pipe(breaker.execute({ key: "k" }))))).toBe(
                "CircuitOpen",
              )
              expect((yield* breaker.state("other"))._tag).toBe("Closed")
              yield* TestClock.adjust("10 seconds")
              const probe = yield* Effect.forkChild(
                Effect.sleep("1 second").pipe(Effect.as("probed"), breaker.execute({ key: "k" })),
              )
              yield* TestClock.adjust("1 millis")
              expect(reasonOf(yield* Effect.exit(Effect.succeed(2).pipe(breaker.execute({ key: "k" }))))).toBe(
                "CircuitHalfOpen",
              )
              yield* TestClock.adjust("1 second")
              expect(yield* Fiber.join(probe)).toBe("probed")
              expect((yield* breaker.state("k"))._tag).toBe("Closed")
            }),
          ),
        ),
      )

    it.effect("RateLimits: a burst up to the limit starts at once; then never more than the limit in any window", () =>
      run(
        Effect.gen(function* () {
          const limits = yield* RateLimits.RateLimits
          const waits = yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7], () => limits.acquire("q", 3, 60_000))
          expect(waits).toEqual([0, 0, 0, 60_000, 60_000, 60_000, 120_000])
          expect(yield* limits.acquire("other", 3, 60_000)).toBe(0)
          yield* TestClock.adjust("30 seconds")
          // Reservations made earlier stand: the next free start is still two windows after the first.
          expect(yield* limits.acquire("q", 3, 60_000)).toBe(90_000)
          yield* TestClock.adjust("10 minutes")
          expect(yield* limits.acquire("q", 3, 60_000)).toBe(0)
        }),
      ),
    )

    it.effect("RateLimits.tryAcquire: takes a free start or nothing, and says when the next one is free", () =>
      run(
        Effect.gen(function* () {
          const limits = yield* RateLimits.RateLimits
          // 20 at once against a limit of 5: exactly 5 get a start, the others are told to come back.
          const first = yield* Effect.all(
            Array.from({ length: 20 }, () => limits.tryAcquire("k", 5, 60_000)),
            { concurrency: "unbounded" },
          )
          expect(first.filter((wait) => wait === 0)).toHaveLength(5)
          expect(first.filter((wait) => wait === 60_000)).toHaveLength(15)
          expect(yield* limits.tryAcquire("other", 5, 60_000)).toBe(0)
          yield* TestClock.adjust("59999 millis")
          expect(yield* limits.tryAcquire("k", 5, 60_000)).toBe(1)
          // The refusals took nothing: one window after the burst, all 5 starts are free again, and no more.
          yield* TestClock.adjust("1 millis")
          const second = yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => limits.tryAcquire("k", 5, 60_000))
          expect(second).toEqual([0, 0, 0, 0, 0, 60_000])
          // It shares the log with acquire: a waiting reservation counts against a try.
          yield* TestClock.adjust("60 seconds")
          expect(yield* limits.acquire("j", 1, 60_000)).toBe(0)
          expect(yield* limits.acquire("j", 1, 60_000)).toBe(60_000)
          expect(yield* limits.tryAcquire("j", 1, 60_000)).toBe(120_000)
          expect(yield* limits.tryAcquire("none", 0, 60_000)).toBe(Number.POSITIVE_INFINITY)
        }),
      ),
    )

    it.effect("QuotaPauses: a pause holds until its end, expires by itself, and only a newer 429 extends it", () =>
      run(
        Effect.gen(function* () {
          const pauses = yield* QuotaPauses.QuotaPauses
          expect(yield* pauses.pausedUntil("p")).toBe(0)
          const start = yield* Clock.currentTimeMillis
          expect(yield* pauses.pause("p", { until: start + 5000, sentAt: start - 100 })).toBe(start + 5000)
          expect(yield* pauses.pausedUntil("p")).toBe(start + 5000)
          expect(yield* pauses.pausedUntil("other")).toBe(0)
          yield* TestClock.adjust("1 second")
          // A 429 from a call sent before the pause began says nothing new.
          expect(yield* pauses.pause("p", { until: start + 9000, sentAt: start - 50 })).toBe(start + 5000)
          // A shorter pause never shortens it; a longer one from a newer call extends it.
          expect(yield* pauses.pause("p", { until: start + 2000, sentAt: start + 500 })).toBe(start + 5000)
          expect(yield* pauses.pause("p", { until: start + 8000, sentAt: start + 500 })).toBe(start + 8000)
          yield* TestClock.adjust("7 seconds")
          expect(yield* pauses.pausedUntil("p")).toBe(0)
        }),
      ),
    )

    it.effect("Concurrency: at most `limit` slots; a waiter gets a released slot; an unreleased lease runs out", () =>
      run(
        Effect.gen(function* () {
          const slots = yield* Concurrency.Concurrency
          const first = yield* slots.acquire("c", 2, 10_000)
          yield* slots.acquire("c", 2, 10_000)
          expect(yield* slots.inUse("c")).toBe(2)
          const waiter = yield* Effect.forkChild(slots.acquire("c", 2, 10_000))
          yield* TestClock.adjust("1 second")
          expect(waiter.pollUnsafe()).toBeUndefined()
          yield* slots.release(first)
          yield* TestClock.adjust("100 millis")
          const third = yield* Fiber.join(waiter)
          expect(yield* slots.inUse("c")).toBe(2)
          // Renewed, the third slot outlives the second (never released: a process that died holding it).
          yield* TestClock.adjust("5 seconds")
          expect(yield* slots.renew(third, 10_000)).toBe(true)
          yield* TestClock.adjust("5 seconds")
          expect(yield* slots.inUse("c")).toBe(1)
          yield* TestClock.adjust("6 seconds")
          expect(yield* slots.inUse("c")).toBe(0)
          expect(yield* slots.renew(third, 10_000)).toBe(false)
        }),
      ),
    )

    it.effect("Concurrency: withSlot renews its lease while the work runs and gives the slot back after", () =>
      run(
        Effect.gen(function* () {
          const slots = yield* Concurrency.Concurrency
          const work = yield* Effect.forkChild(
            Concurrency.withSlot(slots, "w", 1, 3000)(Effect.sleep("20 seconds").pipe(Effect.as("done"))),
          )
          // A network store takes its slot over a round trip: wait for it before moving the clock.
          while ((yield* slots.inUse("w")) === 0) yield* Effect.yieldNow
          for (let step = 0; step < 10; step++) {
            yield* TestClock.adjust("1 second")
            expect(yield* slots.inUse("w")).toBe(1)
          }
          yield* TestClock.adjust("10 seconds")
          expect(yield* Fiber.join(work)).toBe("done")
          expect(yield* slots.inUse("w")).toBe(0)
        }),
      ),
    )

    it.effect("HedgeBudget: one hedge opens a window; then one per 1/share calls; the window slides", () =>
      run(
        Effect.gen(function* () {
          const budget = yield* HedgeBudget.HedgeBudget
          expect(yield* budget.tryHedge("h", 0.1, 60_000)).toBe(true)
          expect(yield* budget.tryHedge("h", 0.1, 60_000)).toBe(false)
          for (let call = 0; call < 9; call++) yield* budget.recordCall("h", 60_000)
          expect(yield* budget.tryHedge("h", 0.1, 60_000)).toBe(false)
          yield* budget.recordCall("h", 60_000)
          expect(yield* budget.tryHedge("h", 0.1, 60_000)).toBe(true)
          expect(yield* budget.tryHedge("other", 0, 60_000)).toBe(false)
          yield* TestClock.adjust("61 seconds")
          expect(yield* budget.tryHedge("h", 0.1, 60_000)).toBe(true)
        }),
      ),
    )

    it.effect("ChannelStats: moving average (a failure counts at least twice it), percentiles after 20 calls", () =>
      run(
        Effect.gen(function* () {
          const stats = yield* ChannelStats.ChannelStats
          expect(yield* stats.summary("c")).toBeUndefined()
          yield* stats.record("c", { latencyMs: 100, ok: true })
          yield* stats.record("c", { latencyMs: 10, ok: false })
          const two = (yield* stats.summary("c"))!
          expect(two.samples).toBe(2)
          expect(two.averageMs).toBeCloseTo(100 + 0.3 * (200 - 100))
          expect(ChannelStats.percentile(two, 95)).toBeUndefined()
          for (let index = 1; index <= 20; index++) yield* stats.record("c", { latencyMs: index * 10, ok: true })
          const summary = yield* stats.summary("c")
          expect(summary!.recent).toHaveLength(21)
          expect(ChannelStats.percentile(summary, 99)).toBe(200)
          expect(ChannelStats.percentile(summary, 50)).toBe(100)
        }),
      ),
    )

    it.effect(
      "ChannelStats: a long run keeps fold's rule (the last 200 successes, repeats and failures) and a summary read earlier stays as it was",
      () =>
        run(
          Effect.gen(function* () {
            const stats = yield* ChannelStats.ChannelStats
            let expected: ChannelStats.Summary | undefined
            let seed = 7
            const next = () => {
              seed = (seed * 1103515245 + 12345) % 2147483648
              return seed / 2147483648
            }
            // Every percentile: together they are the whole sorted window.
            const percentiles = (summary: ChannelStats.Summary) =>
              Array.from({ length: 101 }, (_, p) => ChannelStats.percentile(summary, p))
            let early: { readonly summary: ChannelStats.Summary; readonly expected: ChannelStats.Summary } | undefined
            for (let index = 0; index < 520; index++) {
              // Latencies in steps of 10 ms (repeats), one call in eight failed.
              const sample = { latencyMs: 10 * Math.floor(next() * 400), ok: next() >= 0.125 }
              yield* stats.record("long", sample)
              expected = ChannelStats.fold(expected, sample)
              if (index === 222) early = { summary: (yield* stats.summary("long"))!, expected }
              if (index % 37 !== 0 && index !== 519) continue
              const summary = (yield* stats.summary("long"))!
              expect(summary.samples).toBe(expected.samples)
              expect(summary.averageMs).toBeCloseTo(expected.averageMs, 6)
              expect([...summary.recent]).toEqual([...expected.recent])
              expect(percentiles(summary)).toEqual(percentiles(expected))
            }
            expect(early).toBeDefined()
            expect(percentiles(early!.summary)).toEqual(percentiles(early!.expected))
            expect([...early!.summary.recent]).toEqual([...early!.expected.recent])
            // A summary is plain data: what JSON or a spread of it holds is its three fields.
            const last = (yield* stats.summary("long"))!
            expect(Object.keys(JSON.parse(JSON.stringify(last))).sort()).toEqual(["averageMs", "recent", "samples"])
            expect({ ...last }.recent).toEqual([...expected!.recent])
          }),
        ),
    )
  })

contractSuite("memory", () =>
  Layer.mergeAll(
    Breakers.layerMemory,
    RateLimits.layerMemory,
    QuotaPauses.layerMemory,
    Concurrency.layerMemory,
    HedgeBudget.layerMemory,
    ChannelStats.layerMemory,
  ),
)
contractSuite("sqlite file", () => {
  const file = freshFile()
  return Layer.merge(SqliteState.layer(file), SqliteBreakers.layer(file))
})

// A real redis-server on a loopback port, one per file; each test its own key prefix.
let redis: RedisServer
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis?.close()
})
let prefixes = 0
/** Redis state with no fallback (a Redis failure is a defect), as one worker: its own connection. */
const redisState = (prefix = `t${process.pid}-${prefixes++}:`) =>
  RedisState.layerDirect({ prefix }).pipe(Layer.provide(Layer.orDie(RedisState.layerClient(redis.url))))

contractSuite("redis", () => redisState(), { serverTime: true })

// ---------------------------------------------------------------------------------------------------
// Two runners, one state.

const plugin = join(import.meta.dirname, "..", "fixtures", "fixture-plugin.ts")

const runnerWith = (state: Layer.Layer<State.Services>) =>
  Effect.gen(function* () {
    const folder = mkdtempSync(join(tmpdir(), "peel-shared-"))
    const file = join(folder, "pipeline.yaml")
    writeFileSync(
      file,
      [
        "version: 1",
        "name: shared",
        "channels:",
        `  main: { plugin: ${plugin} }`,
        "stages:",
        "  - generate: { deadline: 60s }",
      ].join("\n"),
    )
    const pipeline = yield* Pipeline.load(file, { env: {}, today: "2026-11-26" })
    return yield* Runner.make(pipeline, { today: "2026-11-26", state })
  })

const sharedPause = (stateFor: () => Effect.Effect<Layer.Layer<State.Services>, never, import("effect").Scope.Scope>) =>
  Effect.scoped(
    Effect.gen(function* () {
      Fixture.reset()
      const a = yield* runnerWith(yield* stateFor())
      const b = yield* runnerWith(yield* stateFor())
      // Runner A meets a 429 asking for 5 s: the quota is paused for every runner sharing the state.
      Fixture.scripts.set("main", ["RateLimited5s"])
      const first = yield* Effect.forkChild(a.run({ prompt: "one" }))
      yield* TestClock.adjust("1 millis")
      const second = yield* Effect.forkChild(b.run({ prompt: "two" }))
      yield* TestClock.adjust("4998 millis")
      // B has not called: it waits for the pause A set.
      expect(Fixture.calls.get("main")?.length).toBe(1)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(first)
      const result = yield* Fiber.join(second)
      expect(result.attempts.map((attempt) => attempt.outcome)).toEqual(["ok"])
      expect(result.latencyMs).toBe(4999)
      expect(Fixture.calls.get("main")?.length).toBe(3)
    }),
  )

describe("runners sharing state", () => {
  it.effect("through one built memory state: a pause set by runner A holds runner B", () =>
    Effect.gen(function* () {
      const context = yield* Layer.build(State.layerMemory)
      return yield* sharedPause(() => Effect.succeed(Layer.succeedContext(context)))
    }).pipe(Effect.scoped),
  )

  it.effect("through two SQLite state instances on one file (two processes): the same", () =>
    Effect.gen(function* () {
      const file = freshFile()
      return yield* sharedPause(() =>
        Effect.succeed(
          // every other state service as in memory; these over the shared file
          Layer.merge(
            State.layerMemory,
            Layer.mergeAll(SqliteState.layer(file), SqliteBreakers.layer(file), SpendLedgerSqlite.layer(file)),
          ),
        ),
      )
    }),
  )

  it.effect("through two Redis connections with one prefix (two workers): B waits out the pause A met", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const prefix = `shared-${process.pid}-${prefixes++}:`
        const a = yield* runnerWith(Layer.merge(State.layerMemory, redisState(prefix)))
        const b = yield* runnerWith(Layer.merge(State.layerMemory, redisState(prefix)))
        const client = Context.get(yield* Layer.build(Layer.orDie(RedisState.layerClient(redis.url))), Redis.Redis)
        /** The latest pause end any worker set under the prefix (read straight from the server). */
        const anyPause = Effect.gen(function* () {
          let until = 0
          for (const key of yield* Effect.orDie(client.send<Array<string>>("KEYS", `${prefix}qp:*`)))
            until = Math.max(until, Number(yield* Effect.orDie(client.send<string | null>("HGET", key, "until"))))
          return until
        })
        // Each step of a network store is a round trip: wait on what happened, not on the clock.
        const settle = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
        Fixture.scripts.set("main", ["RateLimited5s"])
        const first = yield* Effect.forkChild(a.run({ prompt: "one" }))
        let pausedUntil = 0
        while (pausedUntil === 0) {
          yield* settle
          pausedUntil = yield* anyPause
        }
        expect(Fixture.calls.get("main")?.length).toBe(1)
        const startB = yield* Clock.currentTimeMillis
        const second = yield* Effect.forkChild(b.run({ prompt: "two" }))
        while (second.pollUnsafe() === undefined || first.pollUnsafe() === undefined) {
          yield* settle
          yield* TestClock.adjust("100 millis")
        }
        yield* Fiber.join(first)
        const result = yield* Fiber.join(second)
        // B met no 429: it waited for the pause A set, in the other worker.
        expect(result.attempts.map((attempt) => attempt.outcome)).toEqual(["ok"])
        expect(startB + result.latencyMs).toBeGreaterThanOrEqual(pausedUntil)
        expect(Fixture.calls.get("main")?.length).toBe(3)
      }),
    ),
  )

  it.effect("a circuit opened by runner A is open for runner B (the Breakers store is shared)", () =>
    Effect.gen(function* () {
      Fixture.reset()
      const context = yield* Layer.build(State.layerMemory)
      const shared = Layer.succeedContext(context)
      const runnerOf = () =>
        Effect.gen(function* () {
          const file = join(mkdtempSync(join(tmpdir(), "peel-shared-")), "pipeline.yaml")
          writeFileSync(
            file,
            [
              "version: 1",
              "name: breakers",
              "channels:",
              `  flaky: { plugin: ${plugin}, always: Unavailable }`,
              `  backup: { plugin: ${plugin} }`,
              "stages:",
              "  - select: { channels: [flaky, backup] }",
              "  - generate: { breaker: { failures: 2, open: 30s } }",
            ].join("\n"),
          )
          const pipeline = yield* Pipeline.load(file, { env: {}, today: "2026-11-26" })
          return yield* Runner.make(pipeline, { today: "2026-11-26", state: shared })
        })
      const a = yield* runnerOf()
      const b = yield* runnerOf()
      yield* a.run({ prompt: "one" })
      yield* a.run({ prompt: "two" })
      expect(Fixture.calls.get("flaky")?.length).toBe(2)
      const third = yield* b.run({ prompt: "three" })
      expect(third.attempts.map((attempt) => `${attempt.channel}:${attempt.outcome}`)).toEqual([
        "flaky:CircuitOpen",
        "backup:ok",
      ])
      expect(Fixture.calls.get("flaky")?.length).toBe(2)
    }).pipe(Effect.scoped),
  )

  it.effect("separate memory states do not share: runner B calls at once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        Fixture.reset()
        const a = yield* runnerWith(State.layerMemory)
        const b = yield* runnerWith(State.layerMemory)
        Fixture.scripts.set("main", ["RateLimited5s"])
        const first = yield* Effect.forkChild(a.run({ prompt: "one" }))
        yield* TestClock.adjust("1 millis")
        yield* b.run({ prompt: "two" })
        expect(Fixture.calls.get("main")?.length).toBe(2)
        yield* TestClock.adjust("5 seconds")
        yield* Fiber.join(first)
      }),
    ),
  )
})
