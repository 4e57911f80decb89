/**
 * `peel run --dry-run`: each request's plan as one JSON line (`Plan.toJson`), against a running simulator
 * whose ledger proves nothing was called, and no output folder written.
 */
import type { ChildProcess } from "node:child_process"
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { peel, simulatorEnv, startSimulator } from "./cli.ts"

let simulator: { url: string; process: ChildProcess }
beforeAll(async () => {
  simulator = await startSimulator(["--seed", "1"])
}, 60_000)
afterAll(() => {
  simulator.process.kill("SIGINT")
})

const scratch = () => mkdtempSync(join(tmpdir(), "peel-dry-run-"))

const calls = async (): Promise<number> =>
  ((await (await fetch(`${simulator.url}/_simulator/ledger`)).json()) as { totals: { calls: number } }).totals.calls

const plans = (stdout: string): ReadonlyArray<Record<string, unknown>> =>
  stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>)

/** realtime.yaml's channels, but low priority goes to gemini-2.5-flash-image, which makes only 1K images. */
const clampingPipeline = (): string => {
  const file = join(scratch(), "clamping.yaml")
  writeFileSync(
    file,
    [
      "version: 1",
      "name: clamping",
      "channels:",
      "  proxy:",
      "    plugin: openai-compatible",
      "    preset: laozhang",
      '    baseUrl: "${PROXY_BASE_URL}"',
      '    apiKey: "${PROXY_API_KEY}"',
      "  google:",
      "    plugin: google-ai-studio",
      '    baseUrl: "${GEMINI_BASE_URL}"',
      '    apiKey: "${GEMINI_API_KEY}"',
      "stages:",
      "  - resolution: { hero: 4K, default: 2K }",
      "  - route: { low: gemini-2.5-flash-image, default: gemini-3-pro-image }",
      "  - select: { strategy: ordered, channels: [proxy, google] }",
      "  - generate: { timeout: 60s }",
      "",
    ].join("\n"),
  )
  return file
}

describe("peel run --dry-run", () => {
  it("--prompt: a low-priority 4K request routed to a model that clamps it; one JSON line, no call, no folder", async () => {
    const before = await calls()
    const out = join(scratch(), "out")
    const { code, stdout, stderr } = await peel(
      [
        "run",
        clampingPipeline(),
        "--prompt",
        "a pebble",
        "--id",
        "pebble",
        "--use",
        "hero",
        "--priority",
        "low",
      ].concat(["--aspect-ratio", "16:9", "--dry-run", "--out", out]),
      simulatorEnv(simulator.url),
    )
    expect(code, stderr).toBe(0)
    const [plan, ...rest] = plans(stdout)
    expect(rest).toHaveLength(0)
    expect(plan).toMatchObject({
      id: "pebble",
      model: "gemini-2.5-flash-image",
      size: "1K",
      aspectRatio: "16:9",
      candidates: [{ channel: "google", expectedCostUsd: expect.any(Number) }],
      refused: [{ channel: "proxy", reason: expect.stringContaining("16:9") }],
      adjustments: [{ field: "size", from: "4K", to: "1K", reason: expect.stringContaining("gemini-2.5-flash-image") }],
    })
    expect(await calls()).toBe(before)
    expect(existsSync(out)).toBe(false)
  })

  it("--input: one plan per request (n images as ID-1 … ID-n); refusals and adjustments; nothing spent", async () => {
    const before = await calls()
    const folder = scratch()
    const input = join(folder, "requests.jsonl")
    writeFileSync(
      input,
      [
        { id: "thumb", prompt: "a stamp", size: "1K", aspectRatio: "1:1" },
        { id: "cover", prompt: "a harbour at dawn", use: "hero", aspectRatio: "21:9" },
        { id: "pair", prompt: "two foxes", n: 2 },
      ]
        .map((line) => JSON.stringify(line))
        .join("\n"),
    )
    const out = join(folder, "out")
    const { code, stdout, stderr } = await peel(
      ["run", "pipelines/realtime.yaml", "--input", input, "--dry-run", "--out", out],
      simulatorEnv(simulator.url),
    )
    expect(code, stderr).toBe(0)
    const byId = new Map(plans(stdout).map((plan) => [plan.id, plan]))
    expect([...byId.keys()]).toEqual(["thumb", "cover", "pair-1", "pair-2"])
    // 1K 1:1: the proxy's chat route serves it, first and cheapest.
    expect(byId.get("thumb")).toMatchObject({
      model: "gemini-3-pro-image",
      size: "1K",
      aspectRatio: "1:1",
      candidates: [
        { channel: "proxy", expectedCostUsd: 0.05 },
        { channel: "google" },
        { channel: "vertex" },
        { channel: "openrouter" },
      ],
      refused: [],
      adjustments: [],
    })
    // 4K 21:9: the proxy refuses it before any call.
    expect(byId.get("cover")).toMatchObject({
      model: "gemini-3-pro-image",
      size: "4K",
      aspectRatio: "21:9",
      candidates: [{ channel: "google" }, { channel: "vertex" }, { channel: "openrouter" }],
      refused: [{ channel: "proxy", reason: expect.any(String) }],
    })
    expect(byId.get("pair-2")).toMatchObject({ model: "gemini-3-pro-image", size: "2K" })
    expect(await calls()).toBe(before)
    expect(existsSync(out)).toBe(false)
  })

  it("a request that cannot be planned is one line on stderr and exit 1, still without a call", async () => {
    const before = await calls()
    const input = join(scratch(), "requests.jsonl")
    writeFileSync(
      input,
      [
        { id: "ok", prompt: "a fox" },
        { id: "long", prompt: "x".repeat(32_001) },
      ]
        .map((line) => JSON.stringify(line))
        .join("\n"),
    )
    const { code, stdout, stderr } = await peel(
      ["run", "pipelines/realtime.yaml", "--input", input, "--dry-run", "--out", join(scratch(), "out")],
      simulatorEnv(simulator.url),
    )
    expect(code).toBe(1)
    expect(plans(stdout).map((plan) => plan.id)).toEqual(["ok"])
    expect(stderr).toContain("long: prompt is 32001 characters")
    expect(await calls()).toBe(before)
  })
})
