/**
 * `peel keys` as a real process over a real state folder: the key printed alone on the last line, once;
 * the SQLite file and every listing without the secret; names unique among active keys; revoke; bad
 * flags refused with a clear message before anything is stored.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { peel } from "./cli.ts"

const lastLine = (text: string) => text.trimEnd().split("\n").at(-1)!

/** Every byte of every file in the state folder (the journal, its WAL), as latin1 text to search in. */
const stateBytes = (state: string) =>
  readdirSync(state)
    .map((file) => readFileSync(join(state, file)).toString("latin1"))
    .join("\n")

describe("peel keys", () => {
  it("create prints the key alone on the last line; list and the state folder never hold it; revoke", async () => {
    const state = join(mkdtempSync(join(tmpdir(), "peel-keys-cli-")), "state")
    const made = await peel([
      "keys",
      "create",
      "--name",
      "team-a",
      "--budget",
      "5/1d",
      "--rpm",
      "30",
      "--models",
      "nano-banana-pro,gemini-3.1-flash-image",
      "--state",
      state,
    ])
    expect(made.stderr).toBe("")
    expect(made.code).toBe(0)
    const secret = lastLine(made.stdout)
    expect(secret).toMatch(/^peel_[0-9A-Za-z]{43}$/)
    // shown once: the lines before it name the key by its prefix only
    expect(made.stdout.trimEnd().split("\n").slice(0, -1).join("\n")).not.toContain(secret.slice(12))
    expect(made.stdout).toContain(`created key "team-a" (${secret.slice(0, 12)}…): budget $5.0000/1d, 30 rpm`)

    const other = await peel(["keys", "create", "--name", "other", "--state", state])
    expect(other.code).toBe(0)
    const otherSecret = lastLine(other.stdout)
    expect(otherSecret).not.toBe(secret)

    const listed = await peel(["keys", "list", "--state", state])
    expect(listed.code).toBe(0)
    expect(listed.stdout).toMatch(
      /team-a\s+peel_\w{7}…\s+active\s+\$5\.0000\/1d\s+30\s+nano-banana-pro,gemini-3.1-flash-image\s+\$0\.0000 of \$5\.0000 this 1d/,
    )
    expect(listed.stdout).toMatch(/other\s+peel_\w{7}…\s+active\s+-\s+-\s+any\s+\$0\.0000 all time/)
    const json = await peel(["keys", "list", "--json", "--state", state])
    const views = json.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line))
    expect(views.map((view) => [view.name, view.status, view.rpm])).toEqual([
      ["team-a", "active", 30],
      ["other", "active", undefined],
    ])
    for (const output of [listed.stdout, json.stdout, stateBytes(state)]) {
      expect(output).not.toContain(secret.slice(12))
      expect(output).not.toContain(otherSecret.slice(12))
    }
    expect(json.stdout).not.toContain("hash")

    const taken = await peel(["keys", "create", "--name", "team-a", "--state", state])
    expect(taken.code).toBe(1)
    expect(taken.stderr).toBe('peel keys: a key named "team-a" already exists (revoke it first to replace it)\n')

    const revoked = await peel(["keys", "revoke", "team-a", "--state", state])
    expect(revoked.code).toBe(0)
    expect(revoked.stdout).toContain(`revoked key "team-a" (${secret.slice(0, 12)}…)`)
    const again = await peel(["keys", "revoke", "team-a", "--state", state])
    expect(again.code).toBe(1)
    expect(again.stderr).toBe('peel keys: no active key named "team-a"\n')
    // the name is free again for its replacement
    const replaced = await peel(["keys", "create", "--name", "team-a", "--state", state])
    expect(replaced.code).toBe(0)
    const after = await peel(["keys", "list", "--state", state])
    expect(after.stdout.match(/^team-a\s.*$/gm)?.map((line) => line.split(/\s+/)[2])).toEqual(["revoked", "active"])
  }, 180_000)

  it("bad flags get a clear message and store nothing", async () => {
    const state = join(mkdtempSync(join(tmpdir(), "peel-keys-cli-")), "state")
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["--name", "x", "--budget", "5"], "--budget: expected a budget as USD/WINDOW such as 5/1d or 0.50/1h"],
      [["--name", "x", "--budget", "5/fortnight"], "expected a window such as 1d, 12h or 30m"],
      [["--name", "x", "--rpm", "0"], "rpm is a whole number above 0"],
      [["--name", "x", "--models", "dall-e-3"], "unknown model dall-e-3: Peel knows gemini-3-pro-image"],
      [["--name", "has space"], "a key name is 1 to 64 letters"],
    ]
    for (const [flags, message] of cases) {
      const result = await peel(["keys", "create", ...flags, "--state", state])
      expect(result.code).toBe(2)
      expect(result.stdout).toBe("")
      expect(result.stderr).toContain(message)
    }
    const listed = await peel(["keys", "list", "--state", state])
    expect(listed.stdout).toContain("no keys in")
  }, 120_000)

  it("peel stats --by key: one row per key from a gateway's call log; --json one object per key", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "peel-stats-keys-")), "calls.jsonl")
    const attempt = (requestId: string, key: string, costUsd: number) => ({
      type: "attempt",
      time: "2026-11-26T10:00:01.000Z",
      runId: "gw",
      requestId,
      promptHash: "h",
      channel: "google",
      model: "gemini-3-pro-image",
      size: "1K",
      outcome: "ok",
      startedAt: "2026-11-26T10:00:00.000Z",
      latencyMs: 900,
      costUsd,
      key,
    })
    const request = (requestId: string, key: string, costUsd: number) => ({
      type: "request",
      time: "2026-11-26T10:00:01.000Z",
      runId: "gw",
      requestId,
      outcome: "ok",
      latencyMs: 950,
      costUsd,
      attempts: 1,
      calls: 1,
      cached: false,
      placeholder: false,
      hedged: false,
      fallback: false,
      key,
    })
    writeFileSync(
      path,
      [
        attempt("a", "team-a", 0.134),
        request("a", "team-a", 0.134),
        attempt("b", "team-b", 0.039),
        request("b", "team-b", 0.039),
        attempt("c", "team-a", 0.134),
        request("c", "team-a", 0.134),
      ]
        .map((line) => JSON.stringify(line))
        .join("\n"),
    )
    const text = await peel(["stats", path, "--by", "key"])
    expect(text.stderr).toBe("")
    expect(text.stdout.trimEnd().split("\n")).toEqual([
      "key     requests  ok  failed  cached  billed    spent",
      "team-a         2   2       0       0       2  $0.2680",
      "team-b         1   1       0       0       1  $0.0390",
    ])
    const json = await peel(["stats", path, "--by", "key", "--json"])
    expect(
      json.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).key),
    ).toEqual(["team-a", "team-b"])
    const bad = await peel(["stats", path, "--by", "channel"])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toBe('stats: --by takes key, got "channel"\n')
  }, 120_000)

  it("list --redis URL: a Redis that does not answer is an error naming its host, never its password", async () => {
    const state = join(mkdtempSync(join(tmpdir(), "peel-keys-cli-")), "state")
    const listed = await peel(["keys", "list", "--state", state, "--redis", "redis://peel:s3cret@127.0.0.1:1"])
    expect(listed.code).toBe(1)
    expect(listed.stderr).toContain("peel keys: Redis at redis://127.0.0.1:1 is not reachable")
    expect(listed.stdout + listed.stderr).not.toContain("s3cret")
  }, 120_000)
})
