/**
 * The class decides: a table of every channel error's `retryable` and `failover` verdicts, and a runner-level
 * check that a safety block stops the request on the channel that blocked it (no other channel is called,
 * and the blocking channel is not asked again). Written against `Pipeline.load` + `Runner.make` +
 * `runner.run` and the fixture plugin's call counts only, so it survives changes to the runner's insides.
 */
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Errors, Pipeline, Runner } from "../src/index.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const fields = { channel: "c", message: "m" }

/** Every channel error class, built once, with the verdicts the taxonomy promises. */
const verdicts: ReadonlyArray<readonly [string, boolean, boolean, Errors.ChannelError]> = [
  // name, retryable, failover, instance
  ["RateLimited (per minute)", true, true, new Errors.RateLimited({ ...fields, retryAfterMs: 1000 })],
  ["RateLimited (daily quota)", false, true, new Errors.RateLimited({ ...fields, daily: true })],
  ["Unavailable", true, true, new Errors.Unavailable(fields)],
  ["Timeout", true, true, new Errors.Timeout(fields)],
  ["Unauthorized", false, true, new Errors.Unauthorized(fields)],
  ["InsufficientCredits", false, true, new Errors.InsufficientCredits(fields)],
  ["Rejected", false, false, new Errors.Rejected(fields)],
  ["ContentBlocked", false, false, new Errors.ContentBlocked({ ...fields, reason: "IMAGE_SAFETY" })],
  ["NoImage", true, true, new Errors.NoImage(fields)],
  ["MalformedResponse", true, true, new Errors.MalformedResponse(fields)],
  ["Unsupported", false, true, new Errors.Unsupported(fields)],
]

describe("error verdicts: the class decides retry and failover", () => {
  it.each(verdicts)("%s: retryable %s, failover %s", (_name, retryable, failover, error) => {
    expect(error.retryable).toBe(retryable)
    expect(error.failover).toBe(failover)
    expect(Errors.isChannelError(error)).toBe(true)
  })

  it("covers every member of the ChannelError union", () => {
    const covered = [...new Set(verdicts.map(([, , , error]) => error._tag as string))].sort()
    const members = Errors.ChannelError.members.map(
      (member) => (member as unknown as { identifier: string }).identifier,
    )
    expect(covered).toEqual([...members].sort())
  })
})

const pipelineFile = join(import.meta.dirname, "fixtures", "valid.yaml")

/** One request through the fixture pipeline (select: cheap [1K only], main, backup). */
const runOnce = () =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Pipeline.load(pipelineFile, { env: {} })
        const runner = yield* Runner.make(pipeline)
        return yield* Effect.exit(runner.run({ prompt: "a red fox" }))
      }),
    ),
  )

afterEach(() => Fixture.reset())

describe("a safety block never fails over", () => {
  it("ContentBlocked on the first channel that serves the request: the next channel is never called", async () => {
    Fixture.scripts.set("main", ["ContentBlocked"])
    const exit = await runOnce()
    expect(Exit.isFailure(exit)).toBe(true)
    expect(Fixture.calls.get("main")?.length).toBe(1)
    expect(Fixture.calls.get("backup")).toBeUndefined()
    if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("ContentBlocked")
  })

  it("while an error another channel might not have does reach the next channel", async () => {
    Fixture.scripts.set("main", ["Unavailable", "Unavailable", "Unavailable", "Unavailable"])
    const exit = await runOnce()
    expect(Exit.isSuccess(exit)).toBe(true)
    expect(Fixture.calls.get("backup")?.length).toBe(1)
  })
})
