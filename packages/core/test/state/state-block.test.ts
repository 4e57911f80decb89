/**
 * A pipeline's `state:` block: `store: memory` is accepted (and is what a runner uses); an unknown store
 * or an unknown key is a clear FILE:LINE:COL problem like every other key.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { type Errors, Pipeline } from "../../src/index.ts"

const plugin = join(import.meta.dirname, "..", "fixtures", "fixture-plugin.ts")

const load = (state: ReadonlyArray<string>) => {
  const file = join(mkdtempSync(join(tmpdir(), "peel-state-block-")), "pipeline.yaml")
  writeFileSync(
    file,
    [
      "version: 1",
      "name: state",
      "channels:",
      `  main: { plugin: ${plugin} }`,
      ...state,
      "stages:",
      "  - generate: {}",
    ].join("\n"),
  )
  return Effect.exit(Pipeline.load(file, { env: {}, today: "2026-11-26" }))
}

const problemsOf = (exit: Exit.Exit<unknown, unknown>): ReadonlyArray<string> => {
  if (Exit.isSuccess(exit)) throw new Error("expected the load to fail")
  const reason = exit.cause.reasons.find((entry) => entry._tag === "Fail")
  const error = (reason as unknown as { error: Errors.ConfigError }).error
  expect(error._tag).toBe("ConfigError")
  return error.problems.map((problem) => `${problem.line}:${problem.column}: ${problem.message}`)
}

describe("state: block", () => {
  it.effect("store: memory is accepted and kept on the pipeline; no block means memory too", () =>
    Effect.gen(function* () {
      const withBlock = yield* load(["state:", "  store: memory"])
      expect(Exit.isSuccess(withBlock) && withBlock.value.state).toEqual({ store: "memory" })
      const without = yield* load([])
      expect(Exit.isSuccess(without) && without.value.state).toBeUndefined()
    }),
  )

  it.effect("an unknown store and an unknown key are reported at their line and column", () =>
    Effect.gen(function* () {
      const store = problemsOf(yield* load(["state:", "  store: redis"]))
      expect(store).toEqual(['6:10: state.store: Expected "memory", got "redis"'])
      const key = problemsOf(yield* load(["state:", "  store: memory", "  url: redis://localhost"]))
      expect(key).toEqual(['7:3: unknown key "url" at state.url'])
    }),
  )
})
