import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { type Errors, Pipeline, Stages } from "../src/index.ts"

const fixtures = join(import.meta.dirname, "fixtures")
const scratch = mkdtempSync(join(tmpdir(), "peel-loader-"))

/** Write `text` next to the fixture plugin (so `./fixture-plugin.ts` resolves) and load it. */
const loadText = (
  text: string,
  env: Record<string, string> = {},
  name = `case-${Math.random().toString(36).slice(2)}.yaml`,
) => {
  const file = join(fixtures, "..", "..", "test", "fixtures", name)
  writeFileSync(file, text)
  return Effect.runPromiseExit(Pipeline.load(file, { env, today: "2026-11-25" })).finally(() => {
    import("node:fs").then((fs) => fs.rmSync(file, { force: true }))
  })
}

const problemsOf = (exit: Exit.Exit<unknown, unknown>): ReadonlyArray<string> => {
  if (Exit.isSuccess(exit)) throw new Error("expected the load to fail")
  const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  if (error === undefined || error._tag !== "Fail") throw new Error(`expected a failure, got ${String(exit.cause)}`)
  const configError = error.error as Errors.ConfigError
  expect(configError._tag).toBe("ConfigError")
  return configError.problems.map((problem) => `${problem.line}:${problem.column}: ${problem.message}`)
}

describe("Pipeline.load", () => {
  it("loads a valid pipeline with channels and stages in order", async () => {
    const exit = await Effect.runPromiseExit(
      Pipeline.load(join(fixtures, "valid.yaml"), { env: {}, today: "2026-11-25" }),
    )
    expect(Exit.isSuccess(exit)).toBe(true)
    if (!Exit.isSuccess(exit)) return
    const pipeline = exit.value
    expect(pipeline.name).toBe("fixture-pipeline")
    expect(pipeline.channels.map((channel) => channel.name)).toEqual(["cheap", "main", "backup"])
    expect(pipeline.stages.map((stage) => stage.key)).toEqual(["resolution", "route", "select", "generate"])
    // the fixture still routes low priority to 2.5 Flash: deprecated (past Oct 2026), a warning, not a remap
    expect(pipeline.warnings.map((warning) => `${warning.line}: ${warning.message}`)).toEqual([
      "9: model gemini-2.5-flash-image is past its announced earliest shutdown (2026-10-02) and may stop at any time; prefer gemini-3.1-flash-image",
    ])
    const main = pipeline.channels[1]!.config as { apiKey: Redacted.Redacted<string> }
    expect(Redacted.isRedacted(main.apiKey)).toBe(true)
    expect(Redacted.value(main.apiKey)).toBe("fixture-key-0000")
    expect(String(main.apiKey)).not.toContain("fixture-key-0000")
  })

  it("reports a misspelled key, a wrong type and an unset variable, each at its line and column", async () => {
    const exit = await loadText(
      [
        "version: 1",
        "name: broken",
        "channels:",
        "  main:",
        "    plugin: ./fixture-plugin.ts",
        '    apiKey: "${PEEL_TEST_UNSET_KEY}"',
        "    prcie: 0.1",
        "stages:",
        "  - generate: { timeout: 12 }",
        "",
      ].join("\n"),
    )
    const problems = problemsOf(exit)
    expect(problems).toHaveLength(3)
    expect(problems[0]).toMatch(/^6:13: environment variable PEEL_TEST_UNSET_KEY is not set/)
    expect(problems[1]).toMatch(/^7:5: unknown key "prcie" at channels\.main\.prcie; did you mean "price"\?/)
    expect(problems[2]).toMatch(/^9:26: stages\.0\.generate\.timeout: Expected string, got 12/)
  })

  it("names every unset variable and honours ${VAR:-default}", async () => {
    const exit = await loadText(
      [
        "version: 1",
        "name: vars",
        "channels:",
        '  a: { plugin: ./fixture-plugin.ts, apiKey: "${PEEL_MISSING_A}" }',
        '  b: { plugin: ./fixture-plugin.ts, apiKey: "${PEEL_MISSING_B}" }',
        '  c: { plugin: ./fixture-plugin.ts, apiKey: "${PEEL_MISSING_C:-fallback}" }',
        "stages: []",
      ].join("\n"),
    )
    const problems = problemsOf(exit)
    expect(problems.map((problem) => problem.replace(/ \(.*$/, ""))).toEqual([
      "4:45: environment variable PEEL_MISSING_A is not set",
      "5:45: environment variable PEEL_MISSING_B is not set",
    ])
  })

  it("rejects unknown top-level keys, unknown stages and stages after generate, with suggestions", async () => {
    const problems = problemsOf(
      await loadText(
        [
          "version: 1",
          "name: stages",
          "chanels: {}",
          "channels:",
          "  main: { plugin: ./fixture-plugin.ts }",
          "stages:",
          "  - resolutoin: { default: 2K }",
          "  - generate: {}",
          "  - route: { default: gemini-3-pro-image }",
          "  - select: { channels: [main, missing] }",
        ].join("\n"),
      ),
    )
    expect(problems).toEqual([
      '3:1: unknown key "chanels" at chanels; did you mean "channels"?',
      `7:5: unknown stage "resolutoin" (known: ${Stages.definitions.map((stage) => stage.key).join(", ")}); did you mean "resolution"?`,
      '9:5: stage "route" comes after "generate", which is innermost: move it above',
      '10:5: stage "select" comes after "generate", which is innermost: move it above',
    ])
  })

  it("checks select's channel names against the defined channels", async () => {
    const problems = problemsOf(
      await loadText(
        [
          "version: 1",
          "name: s",
          "channels:",
          "  main: { plugin: ./fixture-plugin.ts }",
          "stages:",
          "  - select: { channels: [main, nope] }",
        ].join("\n"),
      ),
    )
    expect(problems).toEqual(['6:32: stages.0.select.channels.1: unknown channel "nope" (defined: main)'])
  })

  it("warns about a retired model id and names its successor", async () => {
    const exit = await loadText(
      [
        "version: 1",
        "name: retired",
        "channels:",
        "  main: { plugin: ./fixture-plugin.ts }",
        "stages:",
        "  - route: { default: gemini-3-pro-image-preview }",
      ].join("\n"),
    )
    expect(Exit.isSuccess(exit)).toBe(true)
    if (!Exit.isSuccess(exit)) return
    expect(exit.value.warnings.map((warning) => warning.format())).toEqual([
      expect.stringMatching(
        /:6:23: warning: model gemini-3-pro-image-preview was shut down at Google on 2026-06-25; use gemini-3-pro-image$/,
      ),
    ])
  })

  it("gives one clear line for a missing file, an empty file and a file that is not YAML", async () => {
    const missing = problemsOf(await Effect.runPromiseExit(Pipeline.load(join(scratch, "nope.yaml"))))
    expect(missing).toEqual(["1:1: file not found"])
    const emptyFile = join(scratch, "empty.yaml")
    writeFileSync(emptyFile, "\n  \n")
    expect(problemsOf(await Effect.runPromiseExit(Pipeline.load(emptyFile)))[0]).toMatch(/^1:1: file is empty/)
    const notYaml = join(scratch, "bad.yaml")
    writeFileSync(notYaml, "version: 1\nname: [unclosed\nchannels: {\n")
    const problems = problemsOf(await Effect.runPromiseExit(Pipeline.load(notYaml)))
    expect(problems.length).toBeGreaterThanOrEqual(1)
    expect(problems[0]).toMatch(/^\d+:\d+: not valid YAML: /)
    const scalar = join(scratch, "scalar.yaml")
    writeFileSync(scalar, "just a string\n")
    expect(problemsOf(await Effect.runPromiseExit(Pipeline.load(scalar)))).toEqual([
      "1:1: expected a mapping with version, name, channels and stages at the top level",
    ])
  })

  it("reports an unloadable plugin at its plugin key", async () => {
    const problems = problemsOf(
      await loadText(
        ["version: 1", "name: p", "channels:", "  main: { plugin: no-such-plugin-here }", "stages: []"].join("\n"),
      ),
    )
    expect(problems).toEqual([
      expect.stringMatching(
        /^4:19: cannot load plugin "no-such-plugin-here": cannot find package @peel\/channel-no-such-plugin-here or no-such-plugin-here/,
      ),
    ])
  })

  it("never puts an interpolated secret into a problem message", async () => {
    const problems = problemsOf(
      await loadText(
        [
          "version: 1",
          "name: leak",
          "channels:",
          '  main: { plugin: ./fixture-plugin.ts, price: "${PEEL_SECRET_VALUE}" }',
          "stages: []",
        ].join("\n"),
        { PEEL_SECRET_VALUE: "sk-very-secret-123" },
      ),
    )
    expect(problems.join("\n")).not.toContain("sk-very-secret-123")
    expect(problems.join("\n")).toContain("<redacted>")
  })
})

describe("typed interpolation", () => {
  it("an unquoted ${VAR} takes its value's type; a quoted one stays a string", async () => {
    const file = join(fixtures, "typed-case.yaml")
    writeFileSync(
      file,
      [
        "version: 1",
        "name: typed",
        "channels:",
        "  main:",
        "    plugin: ./fixture-plugin.ts",
        "    price: ${PEEL_PRICE}",
        "    delayMs: ${PEEL_DELAY:-0}",
        "stages: []",
      ].join("\n"),
    )
    try {
      const pipeline = await Effect.runPromise(Pipeline.load(file, { env: { PEEL_PRICE: "0.07" } }))
      expect(pipeline.channels[0]!.config).toMatchObject({ price: 0.07, delayMs: 0 })
      writeFileSync(
        file,
        [
          "version: 1",
          "name: typed",
          "channels:",
          '  main: { plugin: ./fixture-plugin.ts, price: "${PEEL_PRICE}" }',
          "stages: []",
        ].join("\n"),
      )
      const exit = await Effect.runPromiseExit(Pipeline.load(file, { env: { PEEL_PRICE: "0.07" } }))
      expect(Exit.isFailure(exit)).toBe(true)
    } finally {
      rmSync(file, { force: true })
    }
  })
})
