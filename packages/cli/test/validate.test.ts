import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { schemaPath, schemaText } from "../src/schema.ts"
import { peel, root, simulatorEnv } from "./cli.ts"

const scratch = mkdtempSync(join(tmpdir(), "peel-validate-"))
const write = (name: string, text: string): string => {
  const path = join(scratch, name)
  writeFileSync(path, text)
  return path
}

describe("peel validate", () => {
  it("prints a misspelled key, a wrong type and an unset variable with line:column, and exits 2", async () => {
    const file = write(
      "three.yaml",
      [
        "version: 1",
        "name: three-problems",
        "channels:",
        "  google:",
        "    plugin: google-ai-studio",
        '    apiKey: "${PEEL_TEST_NEVER_SET}"',
        "    baseUrll: http://localhost:1",
        "stages:",
        "  - generate: { timeout: 12 }",
        "",
      ].join("\n"),
    )
    const { code, stdout, stderr } = await peel(["validate", file])
    expect(code).toBe(2)
    expect(stdout).toBe("")
    const lines = stderr.trim().split("\n")
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(new RegExp(`^${file}:6:13: environment variable PEEL_TEST_NEVER_SET is not set`))
    expect(lines[1]).toMatch(
      new RegExp(`^${file}:7:5: unknown key "baseUrll" at channels\\.google\\.baseUrll; did you mean "baseUrl"\\?`),
    )
    expect(lines[2]).toBe(`${file}:9:26: stages.0.generate.timeout: Expected string, got 12`)
  })

  it("gives a missing file, an empty file and a non-YAML file one clear line each, never a stack trace", async () => {
    const cases = [
      [join(scratch, "nope.yaml"), "file not found"],
      [write("empty.yaml", ""), "file is empty"],
      [write("garbage.yaml", "version: 1\nname: [oops\n  : :\n"), "not valid YAML"],
    ] as const
    for (const [file, message] of cases) {
      const { code, stderr } = await peel(["validate", file])
      expect(code).toBe(2)
      expect(stderr.trim().split("\n")[0]).toMatch(new RegExp(`^${file}:\\d+:\\d+: ${message}`))
      expect(stderr).not.toMatch(/\n\s+at /)
    }
  })

  it("accepts every checked-in pipeline, and warns about nothing in them", async () => {
    const files = readdirSync(join(root, "pipelines")).filter((name) => name.endsWith(".yaml"))
    expect(files.length).toBeGreaterThanOrEqual(3)
    const { code, stdout, stderr } = await peel(
      ["validate", ...files.map((name) => `pipelines/${name}`)],
      simulatorEnv("http://127.0.0.1:1"),
    )
    expect(stderr).toBe("")
    expect(code).toBe(0)
    for (const name of files) expect(stdout).toContain(`pipelines/${name}: ok`)
  })

  it("prints what plugins warn about (a placeholder-looking key) as FILE: channels.NAME: warning: …, and exits 0", async () => {
    const file = write(
      "short-key.yaml",
      [
        "version: 1",
        "name: short-key",
        "channels:",
        "  google:",
        "    plugin: google-ai-studio",
        "    baseUrl: http://127.0.0.1:1",
        '    apiKey: "${PEEL_TEST_KEY}"',
        "  proxy:",
        "    plugin: openai-compatible",
        "    preset: laozhang",
        "    baseUrl: http://127.0.0.1:1/v1",
        "    apiKey: a-long-enough-proxy-key",
        "stages:",
        "  - select: { channels: [google, proxy] }",
        "  - generate: { timeout: 60s }",
        "",
      ].join("\n"),
    )
    const { code, stdout, stderr } = await peel(["validate", file], { PEEL_TEST_KEY: "xyz" })
    expect(code).toBe(0)
    const lines = stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(new RegExp(`^${file}: channels\\.google: warning: apiKey is shorter than 8 characters`))
    expect(stderr).not.toContain("xyz")
    expect(stdout).toBe(`${file}: ok (2 channels, 2 stages, 1 warning)\n`)
  })

  it("names every unset variable of a checked-in pipeline (every channel optional, none set)", async () => {
    const { code, stderr } = await peel(["validate", "pipelines/realtime.yaml"])
    expect(code).toBe(2)
    expect(stderr).toContain("every channel is optional and left out")
    for (const variable of ["PROXY_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "OPENROUTER_API_KEY"])
      expect(stderr).toContain(variable)
  })

  it("keeps pipelines/pipeline.schema.json in step with the Schemas (run `pnpm build` to regenerate)", () => {
    expect(readFileSync(schemaPath, "utf8")).toBe(schemaText())
  })

  it("every checked-in pipeline points editors at the JSON Schema", () => {
    for (const name of readdirSync(join(root, "pipelines")).filter((file) => file.endsWith(".yaml")))
      expect(readFileSync(join(root, "pipelines", name), "utf8").split("\n")[0]).toBe(
        "# yaml-language-server: $schema=./pipeline.schema.json",
      )
  })
})
