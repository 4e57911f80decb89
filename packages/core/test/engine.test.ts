/**
 * Engine v2: the plan (clamping with a recorded reason, limits, retired ids, no calls), the attempt
 * journal (whole-request latency, billed failures as costs) and one-pass refusal and image checking.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Pipeline, Request, Runner } from "../src/index.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const fixtures = join(import.meta.dirname, "fixtures")

const withPipeline = <A, E>(file: string, use: (runner: Runner.RunnerShape) => Effect.Effect<A, E>) =>
  Effect.runPromiseExit(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Pipeline.load(file, { env: {}, today: "2026-11-26" })
        const runner = yield* Runner.make(pipeline, { today: "2026-11-26" })
        return yield* use(runner)
      }),
    ),
  )

const pipelineText = (lines: ReadonlyArray<string>): string => {
  const folder = mkdtempSync(join(tmpdir(), "peel-engine-"))
  const file = join(folder, "pipeline.yaml")
  writeFileSync(file, lines.join("\n").replaceAll("./fixture-plugin.ts", join(fixtures, "fixture-plugin.ts")))
  return file
}

const value = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isFailure(exit)) throw new Error(`expected success, got ${String(exit.cause)}`)
  return exit.value
}

afterEach(() => Fixture.reset())

describe("the plan", () => {
  it("is resolved without any call, clamped to what the model makes, with the reason", async () => {
    const plan = value(
      await withPipeline(join(fixtures, "valid.yaml"), (runner) =>
        runner.plan({ prompt: "a fox", priority: "low", use: "hero", aspectRatio: "16:9" }),
      ),
    )
    expect(Fixture.calls.size).toBe(0)
    expect([plan.model, plan.size, plan.aspectRatio]).toEqual(["gemini-2.5-flash-image", "1K", "16:9"])
    expect(plan.adjustments).toEqual([
      { field: "size", from: "4K", to: "1K", reason: "gemini-2.5-flash-image makes only 1K images" },
    ])
    expect(plan.candidates).toEqual(["cheap", "main", "backup"])
    expect(plan.channelRequest).toMatchObject({ model: "gemini-2.5-flash-image", size: "1K", aspectRatio: "16:9" })
  })

  it("leaves out channels that cannot serve the request, once, and says why", async () => {
    const plan = value(
      await withPipeline(join(fixtures, "valid.yaml"), (runner) => runner.plan({ prompt: "a fox", use: "hero" })),
    )
    expect(plan.size).toBe("4K")
    expect(plan.candidates).toEqual(["main", "backup"])
    expect(plan.refused).toEqual([{ channel: "cheap", reason: "cannot make 4K images (serves 1K)" }])
  })

  it("maps a retired model id in a request to its successor, with the reason", async () => {
    const plan = value(
      await withPipeline(join(fixtures, "valid.yaml"), (runner) =>
        runner.plan({ prompt: "a fox", model: "gemini-3-pro-image-preview" }),
      ),
    )
    expect(plan.model).toBe("gemini-3-pro-image")
    expect(plan.adjustments[0]).toMatchObject({ field: "model", from: "gemini-3-pro-image-preview" })
    expect(plan.adjustments[0]?.reason).toContain("shut down")
  })

  it("refuses blank and oversized prompts before any call (limits.maxPromptChars)", async () => {
    const file = pipelineText([
      "version: 1",
      "name: limits",
      "limits: { maxPromptChars: 100 }",
      "channels:",
      "  main: { plugin: ./fixture-plugin.ts }",
      "stages:",
      "  - generate: {}",
    ])
    const blank = await withPipeline(file, (runner) => runner.run({ prompt: " \n\t " }))
    const long = await withPipeline(file, (runner) => runner.run({ prompt: "x".repeat(101) }))
    const fine = await withPipeline(file, (runner) => runner.run({ prompt: "x".repeat(100) }))
    for (const [exit, text] of [
      [blank, "empty"],
      [long, "at most 100"],
    ] as const) {
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isSuccess(exit)) continue
      const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
      const error = (failure as { error: Runner.RunFailure }).error
      expect(error.reason._tag).toBe("InvalidRequest")
      expect(error.reason.message).toContain(text)
      expect(error.costUsd).toBe(0)
    }
    expect(Exit.isSuccess(fine)).toBe(true)
    expect(Fixture.calls.get("main")?.length).toBe(1)
  })
})

describe("the attempt journal", () => {
  it("prices billed failures: an image the upstream charged for but that is truncated is a cost", async () => {
    Fixture.scripts.set("main", ["Truncated"])
    const result = value(
      await withPipeline(join(fixtures, "valid.yaml"), (runner) => runner.run({ prompt: "a fox", use: "hero" })),
    )
    expect(result.channel).toBe("backup")
    expect(result.attempts.map((attempt) => [attempt.channel, attempt.outcome, attempt.costUsd])).toEqual([
      ["cheap", "Unsupported", 0],
      ["main", "MalformedResponse", 0.134],
      ["backup", "ok", 0.2],
    ])
    expect(result.costUsd).toBe(0.334)
    expect(result.attempts.find((attempt) => attempt.won === true)?.channel).toBe("backup")
  })

  it("a failed request carries every attempt and what they cost", async () => {
    Fixture.scripts.set("main", ["Truncated"])
    Fixture.scripts.set("backup", ["NotAnImage"])
    const exit = await withPipeline(join(fixtures, "valid.yaml"), (runner) =>
      runner.run({ prompt: "a fox", use: "hero" }),
    )
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isSuccess(exit)) return
    const failure = (exit.cause.reasons.find((reason) => reason._tag === "Fail") as { error: Runner.RunFailure }).error
    expect(failure.reason._tag).toBe("MalformedResponse")
    expect(failure.attempts.map((attempt) => attempt.outcome)).toEqual([
      "Unsupported",
      "MalformedResponse",
      "MalformedResponse",
    ])
    // The truncated image was billed; the HTML answer said nothing of a price, so it was not.
    expect(failure.costUsd).toBe(0.134)
  })

  it("latencyMs covers the whole request, not only the winning attempt", async () => {
    const file = pipelineText([
      "version: 1",
      "name: slow-then-fast",
      "channels:",
      "  slow: { plugin: ./fixture-plugin.ts, delayMs: 10000 }",
      "  fast: { plugin: ./fixture-plugin.ts }",
      "stages:",
      "  - select: { channels: [slow, fast] }",
      "  - generate: { timeout: 150ms }",
    ])
    const result = value(await withPipeline(file, (runner) => runner.run({ prompt: "a fox" })))
    expect(result.channel).toBe("fast")
    expect(result.attempts.map((attempt) => attempt.outcome)).toEqual(["Timeout", "ok"])
    expect(result.attempts[0]!.latencyMs).toBeGreaterThanOrEqual(140)
    expect(result.latencyMs).toBeGreaterThanOrEqual(result.attempts[0]!.latencyMs + result.attempts[1]!.latencyMs)
    expect(result.attempts[1]!.startedAt).toBeGreaterThanOrEqual(result.attempts[0]!.startedAt + 140)
  })
})

describe("n images", () => {
  it("are n distinct images: each part of a split request is its own cache entry and its own call", async () => {
    const file = pipelineText([
      "version: 1",
      "name: n-images",
      "channels:",
      "  main: { plugin: ./fixture-plugin.ts }",
      "stages:",
      "  - cache: { store: memory, ttl: 1h }",
      "  - generate: {}",
    ])
    const parts = Request.expand({ prompt: "a fox", n: 3 }, "fox")
    expect(parts.map((part) => [part.id, part.variant])).toEqual([
      ["fox-1", 1],
      ["fox-2", 2],
      ["fox-3", 3],
    ])
    const results = value(
      await withPipeline(file, (runner) =>
        Effect.all(
          parts.map((part) => runner.run(part)),
          { concurrency: 3 },
        ),
      ),
    )
    expect(results.map((result) => result.cached)).toEqual([false, false, false])
    expect(Fixture.calls.get("main")?.length).toBe(3)
  })
})
