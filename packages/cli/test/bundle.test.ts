/**
 * The published `peel` command is one bundle with its own copy of `effect` (tsdown.config.ts). Built here
 * into a temporary folder and run as a child process: a first-party channel's secret (`Schema.RedactedFromValue`)
 * decodes, and a third-party plugin beside the pipeline — which brings the `effect` from `node_modules`, a
 * second copy — has its configuration (a secret, a transformed number) decoded and its secret readable.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { peel } from "./cli.ts"

const packageDir = join(import.meta.dirname, "..")
const out = mkdtempSync(join(tmpdir(), "peel-bundle-"))
const bundle = join(out, "bin.mjs")
const fixture = join("packages", "cli", "test", "fixtures", "secret-plugin.yaml")

beforeAll(() => {
  const manifest = createRequire(import.meta.url).resolve("tsdown/package.json")
  const cli = join(
    dirname(manifest),
    (createRequire(import.meta.url)("tsdown/package.json") as { bin: { tsdown: string } }).bin.tsdown,
  )
  const built = spawnSync(process.execPath, [cli, "--out-dir", out, "--log-level", "error"], {
    cwd: packageDir,
    encoding: "utf8",
  })
  if (built.status !== 0) throw new Error(`tsdown failed: ${built.stderr}${built.stdout}`)
}, 180_000)

afterAll(() => rmSync(out, { recursive: true, force: true }))

describe("the bundled peel command", () => {
  it("validates a pipeline whose first-party channel takes a secret", async () => {
    const { code, stdout, stderr } = await peel(
      ["validate", "pipelines/realtime.yaml"],
      { GEMINI_API_KEY: "bundle-test-key-1234" },
      bundle,
    )
    expect(stderr).not.toContain("error")
    expect(stdout).toContain("pipelines/realtime.yaml: ok")
    expect(code).toBe(0)
  })

  it("runs a third-party plugin built on another copy of effect: its secret decodes and reads back", async () => {
    const target = mkdtempSync(join(tmpdir(), "peel-bundle-out-"))
    try {
      const { code, stdout } = await peel(
        ["run", fixture, "--prompt", "a red fox", "--out", target, "--json"],
        { FIXTURE_TOKEN: "fixture-token-1234" },
        bundle,
      )
      const line = JSON.parse(stdout.trim()) as { ok: boolean; channel: string; costUsd: number }
      expect(line).toMatchObject({ ok: true, channel: "secret", costUsd: 0.03 })
      expect(code).toBe(0)
    } finally {
      rmSync(target, { recursive: true, force: true })
    }
  })

  it("reports a third-party plugin's configuration problem by its path, as from sources", async () => {
    const env = { FIXTURE_TOKEN: "fixture-token-1234", FIXTURE_PRICE: "cheap" }
    const bundled = await peel(["validate", fixture], env, bundle)
    const sources = await peel(["validate", fixture], env)
    expect(bundled.code).toBe(2)
    expect(bundled.stderr).toContain("channels.secret.price")
    expect(bundled.stderr).toBe(sources.stderr)
  })
})
