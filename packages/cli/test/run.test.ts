import type { ChildProcess } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { imageSize } from "image-size"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { peel, secrets, simulatorEnv, startSimulator } from "./cli.ts"

let simulator: { url: string; process: ChildProcess }
beforeAll(async () => {
  simulator = await startSimulator(["--seed", "1"])
})
afterAll(() => {
  simulator.process.kill("SIGINT")
})

const scratch = () => mkdtempSync(join(tmpdir(), "peel-run-"))

const ledger = async (): Promise<{ totals: { calls: number; billedImages: number; billedUsd: number } }> =>
  (await fetch(`${simulator.url}/_simulator/ledger`)).json() as never

describe("peel run", () => {
  it("makes a 4K 16:9 image through google-direct.yaml and prints one JSON result", async () => {
    const out = scratch()
    const { code, stdout, stderr } = await peel(
      [
        "run",
        "pipelines/google-direct.yaml",
        "--prompt",
        "a red fox",
        "--size",
        "4K",
        "--aspect-ratio",
        "16:9",
        "--json",
        "--out",
        out,
      ],
      { GEMINI_BASE_URL: simulator.url, GEMINI_API_KEY: "any-key-SECRET-9" },
    )
    expect(stderr).toBe("")
    expect(code).toBe(0)
    const lines = stdout.trim().split("\n")
    expect(lines).toHaveLength(1)
    const result = JSON.parse(lines[0]!)
    expect(result).toMatchObject({
      ok: true,
      channel: "google",
      model: "gemini-3-pro-image",
      size: "4K",
      aspectRatio: "16:9",
      width: 5504,
      height: 3072,
    })
    expect(result.costUsd).toBeGreaterThan(0.2)
    expect(result.file.startsWith(out)).toBe(true)
    const size = imageSize(readFileSync(result.file))
    expect([size.type, size.width, size.height]).toEqual(["png", 5504, 3072])
    expect(stdout).not.toContain("any-key-SECRET-9")
  })

  it("runs a JSONL file in bulk, names files by id or hash, and a re-run skips finished work", async () => {
    const out = scratch()
    const input = join(out, "requests.jsonl")
    writeFileSync(
      input,
      [
        JSON.stringify({ id: "cover", prompt: "a lighthouse", use: "hero", aspectRatio: "16:9" }),
        JSON.stringify({ prompt: "a teapot; rm -rf / && ../../etc/passwd", use: "thumbnail" }),
        JSON.stringify({ prompt: "a kite", priority: "low" }),
        "",
      ].join("\n"),
    )
    const env = simulatorEnv(simulator.url)
    const first = await peel(
      ["run", "pipelines/google-direct.yaml", "--input", input, "--out", out, "--json", "--concurrency", "3"],
      env,
    )
    expect(first.code).toBe(0)
    const results = first.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line))
    expect(results).toHaveLength(3)
    expect(results.every((result) => result.ok === true && result.skipped === undefined)).toBe(true)
    const files = readdirSync(out)
      .filter((name) => name.endsWith(".png"))
      .sort()
    expect(files).toHaveLength(3)
    expect(files).toContain("cover.png")
    for (const name of files) expect(name).toMatch(/^(cover|img-[0-9a-f]{20})\.png$/)
    expect(first.stderr).not.toContain("[#") // no progress bar when stderr is not a terminal

    const before = (await ledger()).totals.calls
    const second = await peel(["run", "pipelines/google-direct.yaml", "--input", input, "--out", out, "--json"], env)
    expect(second.code).toBe(0)
    const again = second.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line))
    expect(again.every((result) => result.skipped === true)).toBe(true)
    expect((await ledger()).totals.calls).toBe(before)
  })

  it("refuses a JSONL file with a bad line before spending anything (exit 2)", async () => {
    const out = scratch()
    const input = join(out, "bad.jsonl")
    writeFileSync(input, `${JSON.stringify({ prompt: "ok" })}\n{"prompt": "x", "size": "8K"}\nnot json\n`)
    const before = (await ledger()).totals.calls
    const { code, stderr } = await peel(
      ["run", "pipelines/google-direct.yaml", "--input", input, "--out", out],
      simulatorEnv(simulator.url),
    )
    expect(code).toBe(2)
    expect(stderr).toContain(`${input}:2: size: Expected `)
    expect(stderr).toContain(`got "8K"`)
    expect(stderr).toContain(`${input}:3: not valid JSON`)
    expect(stderr).toContain(`${input}:3:`)
    expect((await ledger()).totals.calls).toBe(before)
  })

  it("exits 1 when a request fails, says why, and never prints a key", async () => {
    const out = scratch()
    const { code, stdout, stderr } = await peel(
      // A pipeline with nothing to fall back on (the checked-in ones end in a placeholder).
      ["run", "packages/cli/test/fixtures/google-only.yaml", "--prompt", "x", "--json", "--out", out],
      { GEMINI_BASE_URL: "http://127.0.0.1:9", GEMINI_API_KEY: secrets[0]! },
    )
    expect(code).toBe(1)
    const result = JSON.parse(stdout.trim())
    expect(result).toMatchObject({ ok: false, error: { _tag: "Unavailable" } })
    expect(`${stdout}${stderr}`).not.toContain(secrets[0]!)
  })

  it("usage errors exit 2", async () => {
    expect((await peel(["run", "pipelines/google-direct.yaml"])).code).toBe(2)
    expect(
      (
        await peel(
          ["run", "pipelines/google-direct.yaml", "--prompt", "x", "--size", "3K"],
          simulatorEnv(simulator.url),
        )
      ).code,
    ).toBe(2)
    expect((await peel(["run", "pipelines/google-direct.yaml", "--prompt", "x"])).code).toBe(2) // GEMINI_API_KEY unset
    expect((await peel(["frobnicate"])).code).toBe(2)
  })
})

describe("pipelines/realtime.yaml", () => {
  const dead = "http://127.0.0.1:9"
  const variants: ReadonlyArray<readonly [string, string, ReadonlyArray<string>]> = [
    ["proxy", "PROXY_BASE_URL", ["--size", "1K", "--aspect-ratio", "1:1"]],
    ["google", "GEMINI_BASE_URL", []],
    ["vertex", "VERTEX_BASE_URL", []],
    ["openrouter", "OPENROUTER_BASE_URL", []],
  ]
  for (const [channel, variable, extra] of variants) {
    it(`succeeds through ${channel} when the other three endpoints are down`, async () => {
      const env = simulatorEnv(simulator.url)
      const deadEnv = {
        GEMINI_BASE_URL: dead,
        VERTEX_BASE_URL: dead,
        OPENROUTER_BASE_URL: `${dead}/api/v1`,
        PROXY_BASE_URL: `${dead}/v1`,
      } as Record<string, string>
      const alive = env[variable]!
      const { code, stdout, stderr } = await peel(
        ["run", "pipelines/realtime.yaml", "--prompt", `a ${channel} test`, "--json", "--out", scratch(), ...extra],
        { ...env, ...deadEnv, [variable]: alive },
      )
      expect(stderr).toBe("")
      expect(code).toBe(0)
      const result = JSON.parse(stdout.trim())
      expect(result.channel).toBe(channel)
      expect(result.costUsd).toBeGreaterThan(0)
      for (const secret of secrets) expect(stdout).not.toContain(secret)
    })
  }
})
