/**
 * `peel models` (the catalog as a table or JSON lines, with the channels of a pipeline serving each) and
 * `peel validate --offline` (structure, plugins and cross-references without secrets), and the
 * checked-in pipelines running with one key.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { peel } from "./cli.ts"

describe("peel models", () => {
  it("prints every catalog model with aliases, status, sizes, ratios and prices", async () => {
    const { code, stdout } = await peel(["models"])
    expect(code).toBe(0)
    const line = (id: string) => stdout.split("\n").find((row) => row.startsWith(`${id} `)) ?? ""
    expect(line("gemini-3.1-flash-image")).toContain("nano-banana-2")
    expect(line("gemini-3.1-flash-image")).toContain("512 1K 2K 4K")
    expect(line("gemini-3.1-flash-image")).toContain("1:4 4:1 1:8 8:1")
    expect(line("gemini-3.1-flash-image")).toContain("512 $0.045, 1K $0.067, 2K $0.101, 4K $0.151")
    expect(line("gemini-3-pro-image-preview")).toContain("retired 2026-06-25 → gemini-3-pro-image")
    expect(line("gemini-2.5-flash-image")).toContain("deprecated")
    expect(stdout).toContain("verified 2026-02-07, 2026-11-26")
  })

  it("--json with a pipeline: one object per model with the channels serving it (no secrets needed)", async () => {
    const { code, stdout } = await peel(["models", "pipelines/realtime.yaml", "--json"])
    expect(code).toBe(0)
    const rows = stdout
      .trim()
      .split("\n")
      .map((text) => JSON.parse(text))
    const flash = rows.find((row) => row.id === "gemini-3.1-flash-image")
    expect(flash.channels).toEqual(["proxy", "google", "vertex", "openrouter"])
    expect(flash.priceUsd).toEqual({ "512": 0.04482, "1K": 0.0672, "2K": 0.1008, "4K": 0.1512 })
    expect(rows.find((row) => row.id === "gemini-3.1-flash-image-preview").channels).not.toContain("proxy")
  })
})

describe("peel validate --offline", () => {
  it("passes the checked-in pipelines with no variables set", async () => {
    const files = ["pipelines/realtime.yaml", "pipelines/demo.yaml", "pipelines/google-direct.yaml"]
    const { code, stdout, stderr } = await peel(["validate", "--offline", ...files])
    expect([code, stderr]).toEqual([0, ""])
    for (const file of files) expect(stdout).toContain(`${file}: ok offline`)
  })

  it("still finds structural problems and broken references", async () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-offline-"))
    const file = join(folder, "broken.yaml")
    writeFileSync(
      file,
      [
        "version: 1",
        "name: broken",
        "channels:",
        '  google: { plugin: google-ai-studio, apiKey: "${GEMINI_API_KEY}", timeuot: 5s }',
        "stages:",
        "  - select: { strategy: ordered, channels: [google, nowhere] }",
        "  - generate: { timeout: 5s }",
      ].join("\n"),
    )
    const { code, stderr } = await peel(["validate", "--offline", file])
    expect(code).toBe(2)
    expect(stderr).toContain('unknown key "timeuot"')
    expect(stderr).toContain("nowhere")
    expect(stderr).not.toContain("GEMINI_API_KEY")
  })
})

describe("checked-in pipelines with one key", () => {
  it("realtime.yaml leaves the other channels out with one warning each and validates", async () => {
    const { code, stderr, stdout } = await peel(["validate", "pipelines/realtime.yaml"], {
      GEMINI_API_KEY: "a-real-looking-key-1234",
    })
    expect(code).toBe(0)
    expect(stderr.match(/left out/g)).toHaveLength(3)
    expect(stdout).toContain("ok (1 channel")
  })
})
