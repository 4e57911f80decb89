/**
 * The cache stage and stores: hits at $0 in the journal, TTL on the Clock (TestClock), LRU eviction by
 * bytes and entries, corruption detected and refetched, coalescing of identical requests in flight,
 * placeholders/failures never stored, and the key (normalised prompt, model family, size, ratio).
 */
import { mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { afterEach, describe, expect, it } from "vitest"
import { Cache, Pipeline, Runner } from "../src/index.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const fixtures = join(import.meta.dirname, "fixtures")

const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC",
  "base64",
)

const pipelineFile = (cacheBlock: string, extra: ReadonlyArray<string> = [], delayMs = 20): string => {
  const folder = mkdtempSync(join(tmpdir(), "peel-cache-"))
  const file = join(folder, "pipeline.yaml")
  writeFileSync(
    file,
    [
      "version: 1",
      "name: cache-test",
      "channels:",
      `  main: { plugin: ${join(fixtures, "fixture-plugin.ts")}, price: 0.134${delayMs > 0 ? `, delayMs: ${delayMs}` : ""} }`,
      `  backup: { plugin: ${join(fixtures, "fixture-plugin.ts")}, price: 0.2 }`,
      "stages:",
      "  - resolution: { hero: 4K, default: 2K }",
      `  - cache: ${cacheBlock}`,
      ...extra,
      "  - select: { strategy: ordered, channels: [main, backup] }",
      "  - generate: { timeout: 5s }",
    ].join("\n"),
  )
  return file
}

const withRunner = <A, E>(file: string, use: (runner: Runner.RunnerShape) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const pipeline = yield* Pipeline.load(file, { env: {}, today: "2026-11-26" })
      const runner = yield* Runner.make(pipeline, { today: "2026-11-26" })
      return yield* use(runner)
    }),
  )

const calls = (name = "main") => Fixture.calls.get(name)?.length ?? 0

afterEach(() => Fixture.reset())

describe("cache stage", () => {
  it("answers a repeat from the cache at $0, marked cached, recorded in the journal", async () => {
    const [first, second, other] = await Effect.runPromise(
      withRunner(pipelineFile("{ store: memory, ttl: 1h }"), (runner) =>
        Effect.all([
          runner.run({ prompt: "a red  fox\n", id: "one" }),
          runner.run({ prompt: "  a red fox", id: "two", use: "blog" }),
          runner.run({ prompt: "a red fox", id: "three", use: "hero" }),
        ]),
      ),
    )
    expect(calls()).toBe(2)
    expect([first.cached, first.costUsd]).toEqual([false, 0.134])
    expect([second.cached, second.costUsd, second.channel]).toEqual([true, 0, "main"])
    expect(second.attempts).toEqual([
      expect.objectContaining({ channel: "main", outcome: "ok", cached: true, costUsd: 0, won: true }),
    ])
    expect(Buffer.from(second.bytes).equals(Buffer.from(first.bytes))).toBe(true)
    // 4K is another image.
    expect([other.cached, other.size]).toEqual([false, "4K"])
  })

  it("coalesces identical requests in flight: ten at once make one call, each gets the image", async () => {
    // TestClock: the one call (20 ms) cannot finish before every request has asked, however busy the machine.
    const results = await Effect.runPromise(
      withRunner(pipelineFile("{ store: memory }"), (runner) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.forkChild(
            Effect.all(
              Array.from({ length: 10 }, (_, index) => runner.run({ prompt: "a lighthouse", id: `light-${index}` })),
              { concurrency: "unbounded" },
            ),
          )
          yield* TestClock.adjust("1 millis")
          expect(calls()).toBe(1)
          yield* TestClock.adjust("20 millis")
          return yield* Fiber.join(fiber)
        }),
      ).pipe(Effect.provide(TestClock.layer())),
    )
    expect(calls()).toBe(1)
    expect(results.filter((result) => !result.cached)).toHaveLength(1)
    expect(results.reduce((sum, result) => sum + result.costUsd, 0)).toBeCloseTo(0.134, 9)
    for (const result of results) expect(result.bytes.length).toBe(png.length)
  })

  it("a waiter whose leader went away still gets the image, and carries the call's cost", async () => {
    // TestClock: the leader's call (100 ms) is still running when the leader is interrupted.
    const [leader, follower] = await Effect.runPromise(
      withRunner(pipelineFile("{ store: memory }", [], 100), (runner) =>
        Effect.gen(function* () {
          const first = yield* Effect.forkChild(runner.run({ prompt: "a comet", id: "leader" }))
          yield* TestClock.adjust("10 millis")
          expect(calls()).toBe(1)
          const second = yield* Effect.forkChild(runner.run({ prompt: "a comet", id: "follower" }))
          yield* TestClock.adjust("10 millis")
          yield* Fiber.interrupt(first)
          yield* TestClock.adjust("100 millis")
          return [yield* Fiber.await(first), yield* Fiber.join(second)] as const
        }),
      ).pipe(Effect.provide(TestClock.layer())),
    )
    expect(Exit.isFailure(leader)).toBe(true)
    expect(calls()).toBe(1)
    expect([follower.cached, follower.costUsd]).toEqual([false, 0.134])
  })

  it("shares a failure with the requests that waited for it, and never stores it", async () => {
    Fixture.scripts.set("main", ["Rejected"])
    const exits = await Effect.runPromise(
      withRunner(pipelineFile("{ store: memory }"), (runner) =>
        Effect.gen(function* () {
          const first = yield* Effect.all(
            Array.from({ length: 3 }, (_, index) => Effect.exit(runner.run({ prompt: "refused", id: `r${index}` }))),
            { concurrency: "unbounded" },
          )
          const again = yield* Effect.exit(runner.run({ prompt: "refused", id: "later" }))
          return [...first, again]
        }),
      ),
    )
    expect(exits.slice(0, 3).every(Exit.isFailure)).toBe(true)
    // The failure was not cached: the next request called again (and succeeded).
    expect(Exit.isSuccess(exits[3]!)).toBe(true)
    expect(calls()).toBe(2)
  })

  it("does not store an image a fallback made at another size or with another model", async () => {
    // `route` after `cache` is unusual, but shows the rule: the plan (Pro) and the image (Flash) differ.
    const file = pipelineFile("{ store: memory }")
    const result = await Effect.runPromise(
      withRunner(file, (runner) =>
        Effect.gen(function* () {
          const plan = yield* runner.plan({ prompt: "a fox" })
          return plan
        }),
      ),
    )
    const { cacheable } = await import("../src/stages/cache.ts")
    const made = {
      channel: "main",
      model: "gemini-2.5-flash-image",
      size: result.size,
      aspectRatio: result.aspectRatio,
      image: { bytes: png, mimeType: "image/png" },
      info: { mimeType: "image/png", width: 4, height: 3 },
      cached: false,
      placeholder: false,
    }
    expect(cacheable(result, made)).toBe(false)
    expect(cacheable(result, { ...made, model: "gemini-3-pro-image-preview" })).toBe(true)
    expect(cacheable(result, { ...made, model: result.model, placeholder: true })).toBe(false)
    expect(cacheable(result, { ...made, model: result.model, size: "1K" })).toBe(false)
  })

  it("expires entries after the TTL (TestClock)", async () => {
    const file = pipelineFile("{ store: memory, ttl: 10m }", [], 0)
    const cached = await Effect.runPromise(
      withRunner(file, (runner) =>
        Effect.gen(function* () {
          const first = yield* runner.run({ prompt: "a tide pool", id: "a" })
          yield* TestClock.adjust("9 minutes")
          const within = yield* runner.run({ prompt: "a tide pool", id: "b" })
          yield* TestClock.adjust("2 minutes")
          const after = yield* runner.run({ prompt: "a tide pool", id: "c" })
          return [first.cached, within.cached, after.cached]
        }),
      ).pipe(Effect.provide(TestClock.layer())),
    )
    expect(cached).toEqual([false, true, false])
    expect(calls()).toBe(2)
  })
})

describe("memory store", () => {
  const entry = (bytes: Uint8Array) =>
    ({
      bytes,
      info: { mimeType: "image/png", width: 4, height: 3 },
      channel: "main",
      model: "gemini-3-pro-image",
      size: "2K",
      aspectRatio: "1:1",
      storedAt: 0,
    }) as const

  it("evicts the least recently used entry by bytes and by count", async () => {
    const store = Cache.memoryStore({ maxBytes: png.length * 3, maxEntries: 100 })
    const present = await Effect.runPromise(
      Effect.gen(function* () {
        yield* store.set("a", entry(png))
        yield* store.set("b", entry(png))
        yield* store.set("c", entry(png))
        yield* store.get("a") // a is now the most recently used
        yield* store.set("d", entry(png))
        return yield* Effect.forEach(["a", "b", "c", "d"], (key) => store.get(key))
      }),
    )
    expect(present.map((found) => found !== undefined)).toEqual([true, false, true, true])
    expect(store.bytes()).toBe(png.length * 3)

    const counted = Cache.memoryStore({ maxBytes: 1e9, maxEntries: 2 })
    const kept = await Effect.runPromise(
      Effect.gen(function* () {
        for (const key of ["a", "b", "c"]) yield* counted.set(key, entry(png))
        return yield* Effect.forEach(["a", "b", "c"], (key) => counted.get(key))
      }),
    )
    expect(kept.map((found) => found !== undefined)).toEqual([false, true, true])
  })
})

describe("file store", () => {
  /** Move every entry's use time `millis` into the past: what waiting would do, without the wait. */
  const olderBy = (directory: string, millis: number) => {
    for (const shard of readdirSync(directory))
      for (const name of readdirSync(join(directory, shard))) {
        const path = join(directory, shard, name)
        const used = new Date(statSync(path).mtimeMs - millis)
        utimesSync(path, used, used)
      }
  }
  const key = (n: number) => n.toString(16).padStart(64, "0")
  const entry = {
    bytes: png,
    info: { mimeType: "image/png", width: 4, height: 3 },
    channel: "main",
    model: "gemini-3-pro-image",
    size: "2K",
    aspectRatio: "1:1",
    storedAt: 1,
  } as const

  it("round-trips entries through content-addressed files, written atomically", async () => {
    const directory = mkdtempSync(join(tmpdir(), "peel-filecache-"))
    const store = Cache.fileStore({ directory, maxBytes: 1e6 })
    const found = await Effect.runPromise(Effect.andThen(store.set(key(1), entry), store.get(key(1))))
    expect(found?.channel).toBe("main")
    expect(Buffer.from(found!.bytes).equals(png)).toBe(true)
    const shard = key(1).slice(0, 2)
    // No temporary file is left; the entry is named by its key.
    expect(readdirSync(join(directory, shard))).toEqual([`${key(1)}.entry`])
  })

  it("detects a corrupt entry (truncated, flipped byte, foreign key), drops it and reports a miss", async () => {
    const directory = mkdtempSync(join(tmpdir(), "peel-filecache-"))
    const store = Cache.fileStore({ directory, maxBytes: 1e6 })
    const path = join(directory, key(2).slice(0, 2), `${key(2)}.entry`)
    const corruptions: ReadonlyArray<(data: Buffer) => Buffer> = [
      (data) => data.subarray(0, data.length - 5),
      (data) => {
        const copy = Buffer.from(data)
        copy[copy.length - 20] = copy[copy.length - 20]! ^ 0xff
        return copy
      },
      (data) => Buffer.from(data.toString("latin1").replace(key(2), key(3)), "latin1"),
      () => Buffer.from("not an entry at all"),
    ]
    for (const corrupt of corruptions) {
      await Effect.runPromise(store.set(key(2), entry))
      writeFileSync(path, corrupt(readFileSync(path)))
      expect(await Effect.runPromise(store.get(key(2)))).toBeUndefined()
      expect(() => readFileSync(path)).toThrow()
    }
    expect(store.corrupt()).toBe(corruptions.length)
  })

  it("a corrupt file entry is refetched by the stage and rewritten", async () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-filecache-stage-"))
    const file = pipelineFile(`{ store: file, path: ${JSON.stringify(folder)} }`)
    const results = await Effect.runPromise(
      withRunner(file, (runner) =>
        Effect.gen(function* () {
          const first = yield* runner.run({ prompt: "an owl", id: "a" })
          for (const shard of readdirSync(folder))
            for (const name of readdirSync(join(folder, shard))) {
              const path = join(folder, shard, name)
              const data = readFileSync(path)
              writeFileSync(path, data.subarray(0, data.length - 3))
            }
          const refetched = yield* runner.run({ prompt: "an owl", id: "b" })
          const hit = yield* runner.run({ prompt: "an owl", id: "c" })
          return [first.cached, refetched.cached, hit.cached]
        }),
      ),
    )
    expect(results).toEqual([false, false, true])
    expect(calls()).toBe(2)
  })

  it("stays under its byte bound, evicting the least recently used", async () => {
    const directory = mkdtempSync(join(tmpdir(), "peel-filecache-"))
    const size = Cache.encode(key(1), entry).length
    const store = Cache.fileStore({ directory, maxBytes: size * 4 + 10 })
    await Effect.runPromise(
      Effect.gen(function* () {
        for (let n = 1; n <= 10; n++) {
          yield* store.set(key(n), entry)
          // Time passes (every file on disk made a second older, instead of waiting), then an old entry is
          // touched: recently used entries survive.
          olderBy(directory, 1_000)
          yield* store.get(key(1))
        }
      }),
    )
    const kept = await Effect.runPromise(Effect.forEach([1, 2, 3, 10], (n) => store.get(key(n))))
    expect(kept.map((found) => found !== undefined)).toEqual([true, false, false, true])
    let total = 0
    for (const shard of readdirSync(directory))
      for (const name of readdirSync(join(directory, shard))) total += readFileSync(join(directory, shard, name)).length
    expect(total).toBeLessThanOrEqual(size * 4 + 10)
  })
})

describe("cache key", () => {
  const base = { id: "x", prompt: "a fox", model: "gemini-3-pro-image", size: "2K", aspectRatio: "1:1" } as const
  it("normalises whitespace, shares a model family, and separates size, ratio, seed and references", () => {
    expect(Cache.keyOf({ ...base, prompt: "  a\n fox " })).toBe(Cache.keyOf(base))
    expect(Cache.keyOf({ ...base, id: "other" })).toBe(Cache.keyOf(base))
    expect(Cache.keyOf({ ...base, model: "gemini-3-pro-image-preview" })).toBe(Cache.keyOf(base))
    for (const changed of [
      { ...base, size: "4K" as const },
      { ...base, aspectRatio: "16:9" as const },
      { ...base, model: "gemini-2.5-flash-image" },
      { ...base, seed: 7 },
      { ...base, images: [{ bytes: png, mimeType: "image/png" }] },
      { ...base, providerOptions: { style: "ink" } },
    ])
      expect(Cache.keyOf(changed)).not.toBe(Cache.keyOf(base))
    expect(Cache.keyOf({ ...base, providerOptions: { a: 1, b: 2 } })).toBe(
      Cache.keyOf({ ...base, providerOptions: { b: 2, a: 1 } }),
    )
  })
})
