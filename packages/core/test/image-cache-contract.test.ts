/**
 * The image cache's store contract (state/ImageCache.ts): one suite run against the memory store and the
 * file store, on the TestClock — entries round-trip, leases are exclusive until they expire, renew and
 * release. Then coalescing across processes: two runners (each with its own in-process coalescing) on one
 * cache folder make one call for an identical request in flight in both; a runner that dies holding a
 * lease delays the other by the lease at most.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { Redis } from "effect/persistence"
import { TestClock } from "effect/testing"
import { afterAll, afterEach, beforeAll } from "vitest"
import { type RedisServer, startRedis } from "../../testkit/src/RedisServer.ts"
import { Cache, Pipeline, Runner, State } from "../src/index.ts"
import * as ImageCache from "../src/state/ImageCache.ts"
import * as RedisState from "../src/state/redis/RedisState.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const png = new Uint8Array(
  Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC", "base64"),
)
const key = (n: number) => n.toString(16).padStart(64, "0")
const entry = (storedAt: number): ImageCache.Entry => ({
  bytes: png,
  info: { mimeType: "image/png", width: 4, height: 3 },
  channel: "main",
  model: "gemini-3-pro-image",
  size: "2K",
  aspectRatio: "1:1",
  storedAt,
})

const folder = () => mkdtempSync(join(tmpdir(), "peel-image-cache-"))

/** Two handles on one store: the same object in memory; two stores on one folder for files (two processes). */
const contract = (name: string, pair: () => readonly [ImageCache.ImageStore, ImageCache.ImageStore]) =>
  describe(`image store contract: ${name}`, () => {
    it.effect("an entry set is got back whole; a removed one is a miss", () =>
      Effect.gen(function* () {
        const [one, two] = pair()
        expect(yield* one.get(key(1))).toBeUndefined()
        yield* one.set(key(1), entry(5))
        const found = yield* two.get(key(1))
        expect(Buffer.from(found?.bytes ?? []).equals(Buffer.from(png))).toBe(true)
        expect(found).toMatchObject({ channel: "main", model: "gemini-3-pro-image", size: "2K", storedAt: 5 })
        yield* two.remove(key(1))
        expect(yield* one.get(key(1))).toBeUndefined()
      }),
    )

    it.effect("a lease is exclusive until it expires; then another may claim it", () =>
      Effect.gen(function* () {
        const [one, two] = pair()
        const first = yield* one.claim(key(2), 30_000)
        expect(first).toBeDefined()
        expect(yield* two.claim(key(2), 30_000)).toBeUndefined()
        expect(yield* one.claim(key(2), 30_000)).toBeUndefined()
        // other keys are free
        expect(yield* two.claim(key(3), 30_000)).toBeDefined()
        yield* TestClock.adjust("29999 millis")
        expect(yield* two.claim(key(2), 30_000)).toBeUndefined()
        yield* TestClock.adjust("1 millis")
        const second = yield* two.claim(key(2), 30_000)
        expect(second).toBeDefined()
        // the first holder lost it: it cannot renew or release the new holder's lease
        expect(yield* one.renew(first!, 30_000)).toBeUndefined()
        yield* one.release(first!)
        expect(yield* one.claim(key(2), 30_000)).toBeUndefined()
      }),
    )

    it.effect("renewing keeps a lease; releasing frees it at once", () =>
      Effect.gen(function* () {
        const [one, two] = pair()
        const lease = yield* one.claim(key(4), 30_000)
        yield* TestClock.adjust("20 seconds")
        const renewed = yield* one.renew(lease!, 30_000)
        expect(renewed).toBeDefined()
        yield* TestClock.adjust("20 seconds")
        expect(yield* two.claim(key(4), 30_000)).toBeUndefined()
        yield* one.release(renewed!)
        expect(yield* two.claim(key(4), 30_000)).toBeDefined()
      }),
    )
  })

contract("memory", () => {
  const store = ImageCache.memoryStore({ maxBytes: 1e6, maxEntries: 100 })
  return [store, store]
})
contract("file (two stores on one folder)", () => {
  const directory = folder()
  return [ImageCache.fileStore({ directory, maxBytes: 1e6 }), ImageCache.fileStore({ directory, maxBytes: 1e6 })]
})

// A real redis-server on a loopback port; two clients (two workers), no fallback (a failure is a defect).
let redis: RedisServer
let scope: Scope.Closeable
let prefixes = 0
const redisWorker = (prefix: string) =>
  RedisState.layerDirect({ prefix }).pipe(Layer.provide(Layer.orDie(RedisState.layerClient(redis.url))))
beforeAll(async () => {
  redis = await startRedis()
  scope = Scope.makeUnsafe()
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await redis?.close()
})
const redisStore = (prefix: string): Promise<ImageCache.ImageStore> =>
  Effect.runPromise(
    Layer.buildWithScope(redisWorker(prefix), scope).pipe(
      Effect.flatMap((context) =>
        Context.get(context, ImageCache.ImageCache).open({ store: "memory", maxBytes: 1e6, maxEntries: 100 }),
      ),
      Effect.provideService(Scope.Scope, scope),
      Effect.orDie,
    ),
  )
let redisPair: Array<readonly [ImageCache.ImageStore, ImageCache.ImageStore]> = []
beforeAll(async () => {
  redisPair = []
  for (let index = 0; index < 3; index++) {
    const prefix = `c${process.pid}-${prefixes++}:`
    redisPair.push([await redisStore(prefix), await redisStore(prefix)])
  }
})
let redisPairs = 0
contract("redis (two workers on one server)", () => redisPair[redisPairs++ % redisPair.length]!)

describe("coalescing across workers through Redis leases", () => {
  afterEach(() => Fixture.reset())
  const pipelineFile = () => {
    const file = join(folder(), "pipeline.yaml")
    writeFileSync(
      file,
      [
        "version: 1",
        "name: cache-redis",
        "channels:",
        `  main: { plugin: ${join(import.meta.dirname, "fixtures", "fixture-plugin.ts")}, price: 0.134, delayMs: 10000 }`,
        "stages:",
        "  - cache: { store: memory }",
        "  - generate: { timeout: 60s }",
      ].join("\n"),
    )
    return file
  }
  const worker = (file: string, prefix: string) =>
    Effect.flatMap(Pipeline.load(file, { env: {} }), (pipeline) =>
      Runner.make(pipeline, { state: Layer.merge(State.layerMemory, redisWorker(prefix)) }),
    )
  /** Each step of a network store is a round trip: let them happen, then move the clock. */
  const settle = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))

  it.effect("three workers, one identical request each, in flight together: one call, three images", () =>
    Effect.gen(function* () {
      const prefix = `w${process.pid}-${prefixes++}:`
      const file = pipelineFile()
      const workers = [yield* worker(file, prefix), yield* worker(file, prefix), yield* worker(file, prefix)]
      const client = Context.get(yield* Layer.build(Layer.orDie(RedisState.layerClient(redis.url))), Redis.Redis)
      const first = yield* Effect.forkChild(workers[0]!.run({ prompt: "a lighthouse at dusk", id: "a" }))
      // wait for the first worker's lease to be in Redis (an event, not a time)
      while ((yield* Effect.orDie(client.send<Array<string>>("KEYS", `${prefix}ic:*:lease`))).length === 0)
        yield* settle
      const others = [
        yield* Effect.forkChild(workers[1]!.run({ prompt: "a lighthouse at dusk", id: "b" })),
        yield* Effect.forkChild(workers[2]!.run({ prompt: "a lighthouse at dusk", id: "c" })),
      ]
      const all = [first, ...others]
      while (all.some((fiber) => fiber.pollUnsafe() === undefined)) {
        yield* settle
        yield* TestClock.adjust("250 millis")
      }
      const [made, ...waited] = yield* Effect.forEach(all, Fiber.join)
      expect(Fixture.calls.get("main")?.length).toBe(1)
      expect([made!.cached, made!.costUsd]).toEqual([false, 0.134])
      for (const result of waited) expect([result.cached, result.costUsd]).toEqual([true, 0])
    }).pipe(Effect.scoped),
  )

  it.effect("a worker that dies holding the lease delays the others by the lease at most", () =>
    Effect.gen(function* () {
      const prefix = `w${process.pid}-${prefixes++}:`
      const file = pipelineFile()
      const b = yield* worker(file, prefix)
      const request = { prompt: "a lighthouse at dusk", id: "b" }
      const dead = yield* Layer.build(redisWorker(prefix))
      const deadStore = yield* Context.get(dead, ImageCache.ImageCache).open({
        store: "memory",
        maxBytes: 1e6,
        maxEntries: 10,
      })
      const plan = yield* b.plan(request)
      expect(yield* deadStore.claim(Cache.keyOf(plan.channelRequest), 30_000)).toBeDefined()
      const start = yield* Clock.currentTimeMillis
      const waiting = yield* Effect.forkChild(b.run(request))
      while ((yield* Clock.currentTimeMillis) - start < 29_000) {
        yield* settle
        yield* TestClock.adjust("250 millis")
      }
      expect(Fixture.calls.get("main")?.length ?? 0).toBe(0)
      while (waiting.pollUnsafe() === undefined) {
        yield* settle
        yield* TestClock.adjust("250 millis")
      }
      const result = yield* Fiber.join(waiting)
      expect(Fixture.calls.get("main")?.length).toBe(1)
      expect([result.cached, result.costUsd]).toEqual([false, 0.134])
      expect(result.latencyMs).toBeGreaterThanOrEqual(40_000)
    }).pipe(Effect.scoped),
  )
})

describe("coalescing across processes through leases", () => {
  afterEach(() => Fixture.reset())

  const pipelineFile = (cacheFolder: string) => {
    const file = join(folder(), "pipeline.yaml")
    writeFileSync(
      file,
      [
        "version: 1",
        "name: cache-leases",
        "channels:",
        `  main: { plugin: ${join(import.meta.dirname, "fixtures", "fixture-plugin.ts")}, price: 0.134, delayMs: 10000 }`,
        "stages:",
        `  - cache: { store: file, path: ${JSON.stringify(cacheFolder)} }`,
        "  - generate: { timeout: 60s }",
      ].join("\n"),
    )
    return file
  }
  /** A runner with its own state (its own process, as far as coalescing in memory goes). */
  const runner = (file: string) =>
    Effect.flatMap(Pipeline.load(file, { env: {} }), (pipeline) =>
      Runner.make(pipeline, { state: State.layerMemory as Layer.Layer<State.Services> }),
    )

  it.effect("two runners on one cache folder, one identical request each, in flight together: one call", () =>
    Effect.gen(function* () {
      const file = pipelineFile(folder())
      const a = yield* runner(file)
      const b = yield* runner(file)
      const first = yield* Effect.forkChild(a.run({ prompt: "a lighthouse at dusk", id: "a" }))
      yield* TestClock.adjust("1 second")
      const second = yield* Effect.forkChild(b.run({ prompt: "a lighthouse at dusk", id: "b" }))
      yield* TestClock.adjust("9 seconds")
      // the entry is written with real file I/O: wait for it, then let the waiter look again
      const made = yield* Fiber.join(first)
      yield* TestClock.adjust("1 second")
      const waited = yield* Fiber.join(second)
      expect(Fixture.calls.get("main")?.length).toBe(1)
      expect([made.cached, made.costUsd]).toEqual([false, 0.134])
      expect([waited.cached, waited.costUsd]).toEqual([true, 0])
    }).pipe(Effect.scoped),
  )

  it.effect("a runner that dies holding the lease delays the other by the lease at most, never for good", () =>
    Effect.gen(function* () {
      const cacheFolder = folder()
      const b = yield* runner(pipelineFile(cacheFolder))
      const request = { prompt: "a lighthouse at dusk", id: "b" }
      // The dead process: it claimed the key (a 30 s lease) and never came back.
      const dead = ImageCache.fileStore({ directory: cacheFolder, maxBytes: 1e6 })
      const plan = yield* b.plan(request)
      expect(yield* dead.claim(Cache.keyOf(plan.channelRequest), 30_000)).toBeDefined()
      const waiting = yield* Effect.forkChild(b.run(request))
      yield* TestClock.adjust("29 seconds")
      expect(Fixture.calls.get("main")?.length ?? 0).toBe(0)
      yield* TestClock.adjust("1250 millis")
      expect(Fixture.calls.get("main")?.length).toBe(1)
      yield* TestClock.adjust("10 seconds")
      const result = yield* Fiber.join(waiting)
      expect([result.cached, result.costUsd]).toEqual([false, 0.134])
      expect(result.latencyMs).toBeGreaterThanOrEqual(40_000)
    }).pipe(Effect.scoped),
  )
})
