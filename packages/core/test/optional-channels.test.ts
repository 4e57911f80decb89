/**
 * Optional channels (a channel whose required variables are unset is left out with one warning when
 * marked `optional: true`), the hint for unset variables (never "make it optional" for a key), and
 * offline loading (`peel validate --offline`: structure, plugins and cross-references without secrets).
 */
import { rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { type Errors, Pipeline } from "../src/index.ts"

const fixtures = join(import.meta.dirname, "fixtures")

const load = async (text: string, env: Record<string, string> = {}, offline = false) => {
  const file = join(fixtures, `optional-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(file, text)
  try {
    return await Effect.runPromiseExit(Pipeline.load(file, { env, today: "2026-11-26", offline }))
  } finally {
    rmSync(file, { force: true })
  }
}

const messages = (exit: Exit.Exit<Pipeline.Pipeline, unknown>) => {
  if (Exit.isSuccess(exit)) return exit.value.warnings.map((warning) => `${warning.line}: ${warning.message}`)
  const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  return ((failure as { error: Errors.ConfigError }).error.problems ?? []).map(
    (problem) => `${problem.line}: ${problem.message}`,
  )
}

const pipeline = (optional: boolean) => `version: 1
name: optional-channels
channels:
  first:
    plugin: ./fixture-plugin.ts
${optional ? "    optional: true\n" : ""}    apiKey: "\${FIRST_API_KEY}"
  second:
    plugin: ./fixture-plugin.ts
    optional: true
    apiKey: "\${SECOND_API_KEY}"
    price: \${SECOND_PRICE:-0.1}
stages:
  - select: { strategy: ordered, channels: [first, second] }
  - generate: { timeout: 5s }
`

describe("optional channels", () => {
  it("leaves out an optional channel whose variables are unset, with one warning, and keeps the rest", async () => {
    const exit = await load(pipeline(true), { FIRST_API_KEY: "first-key-1234" })
    expect(Exit.isSuccess(exit)).toBe(true)
    if (!Exit.isSuccess(exit)) return
    expect(exit.value.channels.map((channel) => channel.name)).toEqual(["first"])
    expect(messages(exit)).toEqual(["8: channels.second left out: SECOND_API_KEY is not set (optional: true)"])
  })

  it("keeps an optional channel whose variables are set", async () => {
    const exit = await load(pipeline(true), { FIRST_API_KEY: "first-key-1234", SECOND_API_KEY: "second-key-1234" })
    expect(Exit.isSuccess(exit) && exit.value.channels.map((channel) => channel.name)).toEqual(["first", "second"])
    expect(messages(exit)).toEqual([])
  })

  it("a required channel's unset key is an error whose hint is optional: true, never ${VAR:-default}", async () => {
    const exit = await load(pipeline(false), { SECOND_API_KEY: "second-key-1234" })
    expect(Exit.isFailure(exit)).toBe(true)
    expect(messages(exit)).toEqual([
      '6: environment variable FIRST_API_KEY is not set (set it, or add "optional: true" to channels.first to run without that channel)',
    ])
  })

  it("fails when every channel is optional and left out, naming what to set", async () => {
    const exit = await load(pipeline(true))
    expect(messages(exit)).toEqual([
      "4: channels: every channel is optional and left out; set the variables of at least one (first: FIRST_API_KEY; second: SECOND_API_KEY)",
    ])
  })

  it("refuses a non-boolean optional", async () => {
    const exit = await load(pipeline(false).replace('    apiKey: "${FIRST_API_KEY}"', "    optional: yes please"))
    expect(messages(exit)).toContainEqual(expect.stringContaining("channels.first.optional: expected true or false"))
  })

  it("offline: unset variables are no error; structure, plugins and stage references are still checked", async () => {
    expect(Exit.isSuccess(await load(pipeline(false), {}, true))).toBe(true)
    const broken = pipeline(false).replace("channels: [first, second]", "channels: [first, third]")
    const exit = await load(broken, {}, true)
    expect(Exit.isFailure(exit)).toBe(true)
    expect(messages(exit).join("\n")).toContain("third")
  })
})
