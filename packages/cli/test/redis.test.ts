/**
 * Choosing Redis from the CLI, against a real redis-server and the simulator: `peel validate` checks a
 * configured Redis is reachable (and names its host, never its password); `peel run --redis URL` keeps the
 * state there (the budget's spend is in Redis afterwards), and the flag wins over the pipeline's
 * `state.redis`.
 */
import { type ChildProcess, execFileSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RedisServer, startRedis } from "../../testkit/src/RedisServer.ts"
import { peel, simulatorEnv, startSimulator } from "./cli.ts"

let simulator: { url: string; process: ChildProcess }
let redis: RedisServer
beforeAll(async () => {
  ;[simulator, redis] = await Promise.all([startSimulator(["--seed", "3"]), startRedis()])
})
afterAll(async () => {
  simulator?.process.kill("SIGINT")
  await redis?.close()
})

/** A pipeline with a budget (its ledger is a state service) and `state: { redis: URL }`. */
const pipeline = (redisUrl: string) => {
  const file = join(mkdtempSync(join(tmpdir(), "peel-redis-cli-")), "pipeline.yaml")
  writeFileSync(
    file,
    [
      "version: 1",
      "name: redis-state",
      "state:",
      `  redis: "${redisUrl}"`,
      "channels:",
      "  google:",
      "    plugin: google-ai-studio",
      '    baseUrl: "${GEMINI_BASE_URL}"',
      '    apiKey: "${GEMINI_API_KEY}"',
      "stages:",
      "  - budget: { limit: 5, window: 1d, name: cli }",
      "  - generate: { timeout: 60s }",
    ].join("\n"),
  )
  return file
}

/** The settled spend (micro-dollars) of every budget window kept in Redis (read with Debian's redis-cli). */
const spentInRedis = (): number => {
  const cli = (...args: Array<string>) =>
    execFileSync("redis-cli", ["-p", String(redis.port), "--raw", ...args], { encoding: "utf8" }).trim()
  let total = 0
  for (const key of cli("--scan", "--pattern", "peel:sl:*").split("\n").filter(Boolean)) {
    if (key.endsWith(":open") || key.endsWith(":amounts")) continue
    total += Number(cli("GET", key))
  }
  return total
}

describe("Redis from the CLI", () => {
  it("peel validate: a reachable Redis is fine; an unreachable one is an error naming the host, not the password", async () => {
    const good = await peel(["validate", pipeline(redis.url)], simulatorEnv(simulator.url))
    expect(good.code).toBe(0)
    const bad = await peel(["validate", pipeline("redis://peel:s3cret@127.0.0.1:1")], simulatorEnv(simulator.url))
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("state: Redis at redis://127.0.0.1:1 is not reachable")
    expect(bad.stderr + bad.stdout).not.toContain("s3cret")
  })

  it("peel run --redis URL keeps the state in that Redis, winning over the pipeline's state.redis", async () => {
    const out = mkdtempSync(join(tmpdir(), "peel-redis-out-"))
    const before = spentInRedis()
    // The file names an unreachable Redis; the flag names the live one and wins.
    const run = await peel(
      [
        "run",
        pipeline("redis://127.0.0.1:1"),
        "--prompt",
        "a red kite over the dunes",
        "--out",
        out,
        "--redis",
        redis.url,
      ],
      simulatorEnv(simulator.url),
    )
    expect(run.code).toBe(0)
    expect(run.stderr).not.toContain("unreachable")
    expect(run.stderr).not.toContain("did not answer")
    // The budget settled the image's cost in the shared ledger.
    expect(spentInRedis() - before).toBeGreaterThan(0)
  })
})
