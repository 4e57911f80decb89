/**
 * `peel serve` with virtual keys, every piece a real process: the simulator, the gateway, and `peel keys`
 * run beside it on the same state folder. A key created while the gateway runs works at once, a revoked
 * one is refused at once (no restart); the call log names the key, and `peel stats --by key` adds it up;
 * no key secret reaches the gateway's output. Bad `--keys` / `--admin-key-env` are usage errors.
 */
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { peel, root, secrets, simulatorEnv, spawnPeel, startSimulator } from "./cli.ts"

const pipeline = join(root, "packages", "cli", "test", "fixtures", "google-only.yaml")
let simulator: { url: string; process: ChildProcess }

beforeAll(async () => {
  simulator = await startSimulator()
})
afterAll(() => {
  simulator?.process.kill()
})

const generate = (url: string, key: string | undefined, prompt: string) =>
  fetch(`${url}/v1beta/models/gemini-3-pro-image:generateContent`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { "x-goog-api-key": key }) },
    body: JSON.stringify({ contents: [{ parts: [{ text: prompt }] }] }),
  })

describe("peel serve with virtual keys", () => {
  it("keys created and revoked by peel keys count at once; the call log and peel stats --by key name them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "peel-serve-keys-"))
    const state = join(dir, "state")
    const callLog = join(dir, "calls.jsonl")
    const adminKey = "admin-key-SECRET-5"
    const server = spawnPeel(
      [
        "serve",
        pipeline,
        "--port",
        "0",
        "--state",
        state,
        "--keys",
        "required",
        "--admin-key-env",
        "PEEL_ADMIN_KEY",
        "--call-log",
        callLog,
      ],
      { ...simulatorEnv(simulator.url), PEEL_ADMIN_KEY: adminKey },
    )
    try {
      expect(await server.waitForStdout(/peel gateway listening on http:\/\/\S+\n/)).toBe(true)
      const url = /peel gateway listening on (http:\/\/\S+)\n/.exec(server.output().stdout)![1]!
      expect((await generate(url, undefined, "no key")).status).toBe(401)

      const made = await peel(["keys", "create", "--name", "team-a", "--budget", "1/1d", "--state", state])
      expect(made.code).toBe(0)
      const secret = made.stdout.trimEnd().split("\n").at(-1)!
      const ok = await generate(url, secret, "a fox in the snow")
      expect(ok.status).toBe(200)
      const cost = Number(ok.headers.get("x-peel-cost-usd"))
      expect(cost).toBeGreaterThan(0)

      const listed = await peel(["keys", "list", "--json", "--state", state])
      expect(JSON.parse(listed.stdout.trim()).spentUsd).toBeCloseTo(cost, 5)

      // the admin API sees the same store
      const viaAdmin = await fetch(`${url}/admin/keys`, { headers: { authorization: `Bearer ${adminKey}` } })
      expect(((await viaAdmin.json()) as { keys: Array<{ name: string }> }).keys.map((key) => key.name)).toEqual([
        "team-a",
      ])

      expect((await peel(["keys", "revoke", "team-a", "--state", state])).code).toBe(0)
      expect((await generate(url, secret, "after the revoke")).status).toBe(401)

      server.child.kill("SIGTERM")
      const finished = await server.finished
      expect(finished.code).toBe(0)
      for (const text of [finished.stdout, finished.stderr, readFileSync(callLog, "utf8")]) {
        expect(text).not.toContain(secret.slice(5))
        expect(text).not.toContain(adminKey)
        for (const upstream of secrets) expect(text).not.toContain(upstream)
      }

      const stats = await peel(["stats", callLog, "--by", "key", "--json"])
      expect(stats.code).toBe(0)
      const rows = stats.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line))
      expect(rows).toEqual([
        { key: "team-a", requests: 1, ok: 1, failed: 0, cached: 0, billedImages: 1, spentUsd: expect.closeTo(cost, 5) },
      ])
    } finally {
      if (server.child.exitCode === null) server.child.kill("SIGKILL")
    }
  }, 180_000)

  it("--keys and --admin-key-env are checked before the gateway starts", async () => {
    const bad = await peel(["serve", pipeline, "--port", "0", "--keys", "sometimes"], simulatorEnv(simulator.url))
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--keys takes auto, required or off (got "sometimes")')
    const unset = await peel(["serve", pipeline, "--port", "0", "--admin-key-env", "PEEL_NO_SUCH_VAR"], {
      ...simulatorEnv(simulator.url),
    })
    expect(unset.code).toBe(2)
    expect(unset.stderr).toContain("--admin-key-env PEEL_NO_SUCH_VAR: the environment variable is not set")
  }, 120_000)
})
