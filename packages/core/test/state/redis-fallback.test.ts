/**
 * When Redis goes away (a real redis-server stopped mid-run) and comes back: a worker goes on with its own
 * memory state after ONE warning (the fallback counter moves once, however many operations follow), its
 * budget refuses new requests (fail closed) unless `failOpen`, spend settled meanwhile is written when
 * Redis returns, and the worker rejoins the shared state. Also: a worker whose Redis is down at start
 * starts on its own state and joins later; `State.check` reports an unreachable Redis by host, never
 * with its password. And a command's time bound counts real time, whatever clock the program runs on.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Metric } from "effect"
import { Redis } from "effect/persistence"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll } from "vitest"
import { type RedisServer, startRedis } from "../../../testkit/src/RedisServer.ts"
import { State } from "../../src/index.ts"
import * as QuotaPauses from "../../src/state/QuotaPauses.ts"
import * as RateLimits from "../../src/state/RateLimits.ts"
import * as RedisState from "../../src/state/redis/RedisState.ts"
import * as SpendLedger from "../../src/state/SpendLedger.ts"

let redis: RedisServer
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis?.close()
})

const window = { budget: "daily", index: 1 }
const fallbackCount = Effect.map(Metric.value(RedisState.fallbacks), (state) => Number(state.count))
/** Ask until `check` holds (a worker rejoins on its own, within its probe interval). */
const eventually = <A, R>(effect: Effect.Effect<A, never, R>, check: (value: A) => boolean) =>
  Effect.gen(function* () {
    while (true) {
      const value = yield* effect
      if (check(value)) return value
      yield* Effect.sleep("50 millis")
    }
  })

describe("Redis state when the server goes away and comes back", () => {
  it.live("one warning, memory meanwhile, budgets fail closed, spend written on return, rejoined", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const prefix = `f${process.pid}:`
        const options = { url: redis.url, prefix, probeMillis: 100, commandTimeoutMillis: 1000 }
        const worker = yield* Layer.build(RedisState.layer(options))
        const failOpen = yield* Layer.build(RedisState.layer({ ...options, failOpen: true }))
        const limits = Context.get(worker, RateLimits.RateLimits)
        const ledger = Context.get(worker, SpendLedger.SpendLedger)
        const openLedger = Context.get(failOpen, SpendLedger.SpendLedger)
        const client = () =>
          Effect.map(Layer.build(Layer.orDie(RedisState.layerClient(redis.url))), (context) =>
            Context.get(context, Redis.Redis),
          )
        const direct = Effect.map(
          Layer.build(
            RedisState.layerDirect({ prefix }).pipe(Layer.provide(Layer.orDie(RedisState.layerClient(redis.url)))),
          ),
          (context) => Context.get(context, SpendLedger.SpendLedger),
        )

        // Up: the limit's log is in Redis.
        expect(yield* limits.acquire("q", 5, 60_000)).toBe(0)
        const held = yield* ledger.reserve(window, 100, 1_000_000, 60_000)
        expect("_tag" in held).toBe(false)
        expect(yield* Effect.orDie((yield* client()).send<number>("EXISTS", `${prefix}rl:q`))).toBe(1)

        const before = yield* fallbackCount
        yield* Effect.promise(() => redis.stop())

        // Down: answered from memory (a fresh log: 0 wait), one fallback counted for many operations.
        for (let index = 0; index < 5; index++) expect(yield* limits.acquire("q", 5, 60_000)).toBe(0)
        const refused = yield* ledger.reserve(window, 100, 1_000_000, 60_000)
        expect(refused).toMatchObject({ _tag: "Refused" })
        expect((refused as SpendLedger.Refused).unavailable).toContain("unreachable")
        expect((refused as SpendLedger.Refused).unavailable).not.toContain("@")
        const allowed = yield* openLedger.reserve(window, 100, 1_000_000, 60_000)
        expect("_tag" in allowed).toBe(false)
        // The reservation made while Redis was up is settled while it is down: kept, written on return.
        yield* ledger.settle(held as SpendLedger.Reservation, 250)
        // one per worker that met the outage
        expect((yield* fallbackCount) - before).toBe(2)

        yield* Effect.promise(() => redis.start())
        // Back (empty: this server keeps nothing on disk): the worker rejoins and writes the settle it kept.
        const shared = yield* direct
        const balance = yield* eventually(shared.balance(window), (found) => found.spentMicros === 250)
        expect(balance.spentMicros).toBe(250)
        yield* eventually(limits.acquire("rejoined", 5, 60_000), () => true)
        yield* eventually(
          Effect.flatMap(client(), (redis) => Effect.orDie(redis.send<number>("EXISTS", `${prefix}rl:rejoined`))),
          (exists) => exists === 1,
        )
        const again = yield* ledger.reserve(window, 100, 1_000_000, 60_000)
        expect("_tag" in again).toBe(false)
        expect((yield* shared.balance(window)).reservedMicros).toBe(100)
      }),
    ),
  )

  it.live("a worker whose Redis is down at start runs on its own state and joins when it answers", () =>
    Effect.scoped(
      Effect.gen(function* () {
        yield* Effect.promise(() => redis.stop())
        const prefix = `s${process.pid}:`
        const worker = yield* Layer.build(
          RedisState.layer({ url: redis.url, prefix, probeMillis: 100, connectTimeoutMillis: 300 }),
        )
        const limits = Context.get(worker, RateLimits.RateLimits)
        expect(yield* limits.acquire("q", 1, 60_000)).toBe(0)
        yield* Effect.promise(() => redis.start())
        const client = Context.get(yield* Layer.build(Layer.orDie(RedisState.layerClient(redis.url))), Redis.Redis)
        yield* eventually(
          Effect.andThen(
            limits.acquire("joined", 5, 60_000),
            Effect.orDie(client.send<number>("EXISTS", `${prefix}rl:joined`)),
          ),
          (exists) => exists === 1,
        )
      }),
    ),
  )

  it.live("State.check: reachable is no problem; unreachable names the host, never the password", () =>
    Effect.gen(function* () {
      expect(yield* State.check({ redis: redis.url })).toEqual([])
      expect(yield* State.check(undefined)).toEqual([])
      const problems = yield* State.check({ redis: "redis://user:s3cret@127.0.0.1:1" })
      expect(problems).toHaveLength(1)
      expect(problems[0]).toContain("127.0.0.1:1")
      expect(problems[0]).not.toContain("s3cret")
    }),
  )
})

describe("Redis command time bounds", () => {
  it.effect("count real time: a slow answer is not timed out by a TestClock moved past the bound", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const prefix = `b${process.pid}:`
        const services = yield* Layer.build(
          RedisState.layerDirect({ prefix, commandTimeoutMillis: 1000 }).pipe(
            Layer.provide(Layer.orDie(RedisState.layerClient(redis.url))),
          ),
        )
        const pauses = Context.get(services, QuotaPauses.QuotaPauses)
        const admin = Context.get(yield* Layer.build(Layer.orDie(RedisState.layerClient(redis.url))), Redis.Redis)
        // The server holds every command for 300 ms of real time; meanwhile the test's clock jumps an hour.
        yield* Effect.orDie(admin.send("CLIENT", "PAUSE", "300", "ALL"))
        const read = yield* Effect.forkChild(pauses.pausedUntil("peel:pause:q|m"), { startImmediately: true })
        // Let the command reach the wire, so that a bound on the TestClock would be armed before the jump.
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
        yield* TestClock.adjust("1 hour")
        expect(yield* Fiber.join(read)).toBe(0)
      }),
    ),
  )
})
