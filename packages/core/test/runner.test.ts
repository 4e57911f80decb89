import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Fiber, Stream, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { afterEach, describe, expect, it } from "vitest"
import { createRunner, Pipeline, Runner } from "../src/index.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const pipelineFile = join(import.meta.dirname, "fixtures", "valid.yaml")

const withRunner = <A, E>(
  use: (runner: Runner.RunnerShape) => Effect.Effect<A, E>,
  options: Runner.RunnerOptions = {},
): Promise<A> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Pipeline.load(pipelineFile, { env: {} })
        const runner = yield* Runner.make(pipeline, options)
        return yield* use(runner)
      }),
    ),
  )

afterEach(() => Fixture.reset())

describe("Runner", () => {
  it("makes a Runner.run span only for an installed tracer (none is made for the native one)", async () => {
    const names: Array<string> = []
    const recording = Tracer.make({
      span: (options) => {
        names.push(options.name)
        return Tracer.nativeTracer.span(options)
      },
    })
    await withRunner((runner) =>
      Effect.gen(function* () {
        yield* runner.run({ prompt: "untraced" })
        expect(names).toEqual([])
        yield* runner.run({ prompt: "traced" }).pipe(Effect.withTracer(recording))
      }),
    )
    expect(names).toContain("Runner.run")
  })

  it("routes by use and priority, skips channels that cannot serve the size, and records attempts", async () => {
    const result = await withRunner((runner) => runner.run({ prompt: "a red fox", use: "hero" }))
    expect(result.size).toBe("4K")
    expect(result.model).toBe("gemini-3-pro-image")
    expect(result.channel).toBe("main")
    expect(result.attempts.map((attempt) => [attempt.channel, attempt.outcome])).toEqual([
      ["cheap", "Unsupported"],
      ["main", "ok"],
    ])
    expect(Fixture.calls.get("cheap")).toBeUndefined()
    expect([result.width, result.height, result.mimeType]).toEqual([4, 3, "image/png"])
    expect(result.costUsd).toBe(0.134)
    expect(result.promptHash).toMatch(/^[0-9a-f]{64}$/)
  })

  it("an explicit size is honoured even without a resolution stage", async () => {
    const result = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const pipeline = yield* Pipeline.load(join(import.meta.dirname, "fixtures", "cheapest.yaml"), { env: {} })
          const runner = yield* Runner.make(pipeline)
          return yield* runner.run({ prompt: "x", size: "4K", aspectRatio: "16:9" })
        }),
      ),
    )
    expect([result.size, result.aspectRatio]).toEqual(["4K", "16:9"])
    expect(Fixture.calls.get("main")?.[0]?.size).toBe("4K")
  })

  it("explicit size and model win over routing; low priority goes to Flash", async () => {
    const explicit = await withRunner((runner) =>
      runner.run({ prompt: "x", use: "hero", size: "1K", model: "gemini-3-pro-image", aspectRatio: "16:9" }),
    )
    expect([explicit.size, explicit.aspectRatio, explicit.channel]).toEqual(["1K", "16:9", "cheap"])
    const low = await withRunner((runner) => runner.run({ prompt: "x", priority: "low" }))
    // 2.5 Flash makes only 1K images: the plan clamps the routed 2K and says why.
    expect([low.model, low.size]).toEqual(["gemini-2.5-flash-image", "1K"])
    expect(low.adjustments).toEqual([
      { field: "size", from: "2K", to: "1K", reason: "gemini-2.5-flash-image makes only 1K images" },
    ])
  })

  it("fails over on errors another channel might not have, and stops at once on Rejected", async () => {
    Fixture.scripts.set("main", ["Unavailable"])
    const failedOver = await withRunner((runner) => runner.run({ prompt: "x" }))
    expect(failedOver.channel).toBe("backup")
    expect(failedOver.attempts.map((attempt) => attempt.outcome)).toEqual(["Unsupported", "Unavailable", "ok"])

    Fixture.reset()
    Fixture.scripts.set("main", ["Rejected"])
    const exit = await withRunner((runner) => Effect.exit(runner.run({ prompt: "x" })))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isSuccess(exit)) return
    const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
    const error = failure?._tag === "Fail" ? (failure.error as Runner.RunFailure) : undefined
    expect(error?.reason._tag).toBe("Rejected")
    expect(error?.attempts.map((attempt: { outcome: string }) => attempt.outcome)).toEqual(["Unsupported", "Rejected"])
    expect(Fixture.calls.get("backup")).toBeUndefined()
  })

  it("writes images atomically under outDir named by id, and a bulk re-run skips what is there", async () => {
    const outDir = mkdtempSync(join(tmpdir(), "peel-out-"))
    const requests = [{ prompt: "one", id: "first" }, { prompt: "two" }, { prompt: "three", id: "third" }]
    const outcomes = await withRunner((runner) => Stream.runCollect(runner.runAll(requests, { concurrency: 2 })), {
      outDir,
    })
    expect(outcomes.map((outcome) => outcome._tag)).toEqual(["Done", "Done", "Done"])
    const files = readdirSync(outDir)
      .filter((file) => file.endsWith(".png"))
      .sort()
    expect(files).toHaveLength(3)
    expect(files).toContain("first.png")
    expect(files.every((file) => /^[A-Za-z0-9._-]+\.png$/.test(file))).toBe(true)
    expect(readFileSync(join(outDir, "first.png")).subarray(1, 4).toString()).toBe("PNG")
    const callsBefore = [...Fixture.calls.values()].flat().length

    const again = await withRunner((runner) => Stream.runCollect(runner.runAll(requests, { concurrency: 2 })), {
      outDir,
    })
    expect(again.map((outcome) => outcome._tag)).toEqual(["Skipped", "Skipped", "Skipped"])
    expect([...Fixture.calls.values()].flat().length).toBe(callsBefore)
  })

  it("never has more than `concurrency` requests in flight", async () => {
    let inFlight = 0
    let peak = 0
    const outcomes = await withRunner((runner) =>
      Stream.runCollect(
        Stream.fromIterable(Array.from({ length: 12 }, (_, index) => ({ prompt: `p${index}` }))).pipe(
          Stream.tap(() =>
            Effect.sync(() => {
              inFlight += 1
              peak = Math.max(peak, inFlight)
            }),
          ),
          (requests) => runner.runAll(requests, { concurrency: 3 }),
          Stream.tap(() =>
            Effect.sync(() => {
              inFlight -= 1
            }),
          ),
        ),
      ),
    )
    expect(outcomes).toHaveLength(12)
    expect(peak).toBeLessThanOrEqual(3 + 1)
  })

  it("cheapest orders candidates by expected price and puts channels that cannot serve the request last", async () => {
    const run = (request: { prompt: string; size: "1K" | "2K" }) =>
      Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const pipeline = yield* Pipeline.load(join(import.meta.dirname, "fixtures", "cheapest.yaml"), { env: {} })
            const runner = yield* Runner.make(pipeline)
            return yield* runner.run(request)
          }),
        ),
      )
    expect((await run({ prompt: "x", size: "1K" })).channel).toBe("cheap")
    expect((await run({ prompt: "x", size: "2K" })).channel).toBe("main")
    Fixture.scripts.set("main", ["Unavailable"])
    const failedOver = await run({ prompt: "x", size: "2K" })
    expect(failedOver.attempts.map((attempt) => `${attempt.channel}:${attempt.outcome}`)).toEqual([
      "cheap:Unsupported",
      "main:Unavailable",
      "backup:ok",
    ])
  })

  it("interrupting a run interrupts the channel call", async () => {
    const exit = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const pipeline = yield* Pipeline.load(join(import.meta.dirname, "fixtures", "slow.yaml"), { env: {} })
          const runner = yield* Runner.make(pipeline)
          const fiber = yield* Effect.forkChild(runner.run({ prompt: "slow" }))
          // TestClock: 50 ms into the call, well before its 200 ms timeout, however busy the machine.
          yield* TestClock.adjust("50 millis")
          yield* Fiber.interrupt(fiber)
          return yield* Fiber.await(fiber)
        }),
      ).pipe(Effect.provide(TestClock.layer())),
    )
    expect(Exit.hasInterrupts(exit)).toBe(true)
  })

  it("turns a slow channel into Timeout and fails over", async () => {
    const result = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const pipeline = yield* Pipeline.load(join(import.meta.dirname, "fixtures", "slow.yaml"), { env: {} })
          const runner = yield* Runner.make(pipeline)
          const fiber = yield* Effect.forkChild(runner.run({ prompt: "slow", id: "timeout-case" }))
          yield* TestClock.adjust("200 millis")
          return yield* Fiber.join(fiber)
        }),
      ).pipe(Effect.exit, Effect.provide(TestClock.layer())),
    )
    expect(Exit.isFailure(result)).toBe(true)
    if (Exit.isSuccess(result)) return
    const failure = result.cause.reasons.find((reason) => reason._tag === "Fail")
    expect(failure?._tag === "Fail" && (failure.error as Runner.RunFailure).reason._tag).toBe("Timeout")
  })
})

describe("createRunner (Promise facade)", () => {
  it("runs the README example: generate, then close", async () => {
    const outDir = mkdtempSync(join(tmpdir(), "peel-facade-"))
    const runner = await createRunner(pipelineFile, { outDir, env: {} })
    const result = await runner.generate({ prompt: "a red fox", size: "2K", id: "fox" })
    expect(result.file).toBe(join(outDir, "fox.png"))
    expect(existsSync(result.file!)).toBe(true)
    await expect(runner.generate({ prompt: "" })).rejects.toMatchObject({ _tag: "InvalidRequest" })
    await expect(runner.generate({ prompt: "x", bogus: 1 } as never)).rejects.toMatchObject({ _tag: "InvalidRequest" })
    await runner.close()
    await expect(runner.generate({ prompt: "x" })).rejects.toThrow("closed")
  })

  it("rejects with ConfigError for a broken pipeline", async () => {
    await expect(createRunner(join(tmpdir(), "does-not-exist.yaml"))).rejects.toMatchObject({ _tag: "ConfigError" })
  })
})
