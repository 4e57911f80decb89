/**
 * The Promise API as a JavaScript caller uses it — `generate(request, { signal })` (abort reaches the
 * channel), `generateAll` as an async iterable (n images, invalid requests as failed outcomes, progress),
 * typed errors to switch on — and `definePromisePlugin`: a channel written with async functions and a
 * Standard Schema config, its problems located, its throws typed.
 */
import { rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { afterEach, describe, expect, it, vi } from "vitest"
import { createRunner, type Errors, Pipeline, type Runner } from "../src/index.ts"
import { seen } from "./fixtures/promise-plugin.ts"

const fixtures = join(import.meta.dirname, "fixtures")
const written: Array<string> = []
afterEach(() => {
  for (const file of written.splice(0)) rmSync(file, { force: true })
  seen.requests.length = 0
  seen.aborted = 0
  seen.made = 0
  seen.closed = 0
})

const pipelineFile = (channel: string, generate = "timeout: 5s") => {
  const file = join(fixtures, `promise-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(
    file,
    [
      "version: 1",
      "name: promise",
      "channels:",
      `  main: { plugin: ./promise-plugin.ts, ${channel} }`,
      "stages:",
      `  - generate: { ${generate} }`,
    ].join("\n"),
  )
  written.push(file)
  return file
}

const request = { prompt: "a red fox", model: "gemini-3-pro-image" } as const

describe("definePromisePlugin", () => {
  it("generates through async functions; text, cost and seed pass through", async () => {
    const runner = await createRunner(pipelineFile("price: 0.05"))
    try {
      const result = await runner.generate({ ...request, seed: 3 })
      expect([result.channel, result.costUsd, result.text, result.width]).toEqual(["main", 0.05, "done", 4])
      expect(seen.requests).toEqual([{ prompt: "a red fox", seed: 3 }])
    } finally {
      await runner.close()
    }
    expect(seen.closed).toBeGreaterThan(0)
  })

  it("reports Standard Schema issues at the key's line, like any plugin", async () => {
    const exit = await Effect.runPromiseExit(Pipeline.load(pipelineFile("price: -1, colour: red")))
    expect(Exit.isFailure(exit)).toBe(true)
    const text = String(Exit.isFailure(exit) ? exit.cause : "")
    expect(text).toContain("channels.main")
    expect(text).toMatch(/price|colour/)
  })

  it("turns what generate throws into typed errors: { status: 429 } is RateLimited, an Error is Unavailable", async () => {
    for (const [fail, tag] of [
      ["429", "RateLimited"],
      ["500", "Unavailable"],
    ] as const) {
      // One call: what is checked is how the throw is typed, not the waits after a 429 (test/resilience.test.ts).
      const runner = await createRunner(pipelineFile(`price: 0.05, fail: "${fail}"`, "timeout: 5s, maxAttempts: 1"))
      try {
        const failure = (await runner.generate(request).catch((error: unknown) => error)) as Runner.RunFailure
        expect(failure._tag).toBe("RunFailure")
        expect(failure.reason._tag).toBe(tag)
        if (tag === "RateLimited") expect((failure.reason as Errors.RateLimited).retryAfterMs).toBe(1000)
        expect(seen.requests).toHaveLength(1)
        seen.requests.length = 0
      } finally {
        await runner.close()
      }
    }
  })

  it("checks provider options with the channel's own validator before any call", async () => {
    const runner = await createRunner(pipelineFile("price: 0.05"))
    try {
      const bad = (await runner
        .generate({ ...request, providerOptions: { main: { colour: "red" } } })
        .catch((error: unknown) => error)) as Runner.RunFailure
      expect(bad.reason._tag).toBe("InvalidRequest")
      expect(bad.reason.message).toContain("takes only { style: string }")
      expect(seen.requests).toEqual([])
      await runner.generate({ ...request, providerOptions: { "promise-fixture": { style: "ink" } } })
      expect(seen.requests).toHaveLength(1)
    } finally {
      await runner.close()
    }
  })
})

describe("the Promise API", () => {
  it("generate(request, { signal }): aborting rejects with an AbortError and aborts the channel's call", async () => {
    const runner = await createRunner(pipelineFile('price: 0.05, fail: "hang"'))
    try {
      const controller = new AbortController()
      const pending = runner.generate(request, { signal: controller.signal })
      // Abort once the channel's call is in flight (not after a guess at how long that takes).
      await vi.waitFor(() => expect(seen.requests).toHaveLength(1), { timeout: 20_000, interval: 5 })
      controller.abort()
      const error = (await pending.catch((thrown: unknown) => thrown)) as Error
      expect(error.name).toBe("AbortError")
      expect(seen.aborted).toBe(1)
      const already = await runner.generate(request, { signal: AbortSignal.abort() }).catch((thrown: unknown) => thrown)
      expect((already as Error).name).toBe("AbortError")
    } finally {
      await runner.close()
    }
  })

  it("one runtime per runner: channels are made once for every generate, and closed once by close", async () => {
    const runner = await createRunner(pipelineFile("price: 0.05"))
    try {
      for (let index = 0; index < 5; index++) await runner.generate({ ...request, prompt: `a fox ${index}` })
      await Promise.all([1, 2, 3].map((index) => runner.generate({ ...request, prompt: `an owl ${index}` })))
      expect([seen.made, seen.requests.length, seen.closed]).toEqual([1, 8, 0])
    } finally {
      await runner.close()
    }
    expect([seen.made, seen.closed]).toEqual([1, 1])
    await expect(runner.generate(request)).rejects.toThrow("runner is closed")
  })

  it("close interrupts the calls still in flight: their channel calls are aborted and their promises reject", async () => {
    const runner = await createRunner(pipelineFile('price: 0.05, fail: "hang"'))
    const pending = runner.generate(request).then(
      () => "resolved",
      () => "rejected",
    )
    while (seen.requests.length === 0) await new Promise((resolve) => setImmediate(resolve))
    await runner.close()
    expect(await pending).toBe("rejected")
    expect([seen.aborted, seen.closed]).toEqual([1, 1])
  })

  it("generateAll: an async iterable of outcomes; n images as ID-1 … ID-n; invalid requests fail; progress", async () => {
    const runner = await createRunner(pipelineFile("price: 0.05"))
    const progress: Array<number> = []
    try {
      const outcomes: Array<Runner.Outcome> = []
      for await (const outcome of runner.generateAll(
        [{ ...request, id: "pair", n: 2 }, { prompt: "   " }, { ...request, id: "single" }],
        { concurrency: 2, onProgress: ({ done }) => progress.push(done) },
      ))
        outcomes.push(outcome)
      const ids = outcomes.map((outcome) =>
        outcome._tag === "Done"
          ? outcome.result.id
          : outcome._tag === "Failed"
            ? `failed:${outcome.failure.reason._tag}`
            : "skipped",
      )
      expect(ids.sort()).toEqual(["failed:InvalidRequest", "pair-1", "pair-2", "single"])
      expect(progress).toEqual([1, 2, 3, 4])
    } finally {
      await runner.close()
    }
  })

  it("generateAll with a signal: aborting ends the iteration and cancels the calls in flight", async () => {
    const runner = await createRunner(pipelineFile('price: 0.05, fail: "hang"'))
    try {
      const controller = new AbortController()
      // Abort once both calls are in flight (not after a guess at how long that takes).
      const inFlight = vi
        .waitFor(() => expect(seen.requests).toHaveLength(2), { timeout: 20_000, interval: 5 })
        .finally(() => controller.abort())
      const outcomes: Array<Runner.Outcome> = []
      for await (const outcome of runner.generateAll([request, { ...request, prompt: "an owl" }], {
        signal: controller.signal,
      }))
        outcomes.push(outcome)
      await inFlight
      expect(outcomes).toEqual([])
      expect(seen.aborted).toBe(2)
    } finally {
      await runner.close()
    }
  })
})
