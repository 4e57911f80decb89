/**
 * The `peel` process sizes its heap for bulk runs: with `--input` it replaces itself (same pid) with a
 * node started with the bin's V8 flags; other commands, and a user's own heap flags, are left alone. A
 * preloaded script records each start (pid and node flags), so the restart is seen, not inferred.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { nodeEnvironment, nodeFlags } from "../src/nodeFlags.ts"
import { peel } from "./cli.ts"

/** Run peel with a preload that logs every start; returns the starts. */
const starts = async (
  args: ReadonlyArray<string>,
  nodeOptions = "",
): Promise<ReadonlyArray<{ pid: number; execArgv: Array<string>; arenas?: string }>> => {
  const dir = mkdtempSync(join(tmpdir(), "peel-node-flags-"))
  const log = join(dir, "starts.jsonl")
  const preload = join(dir, "record.cjs")
  writeFileSync(
    preload,
    `require("node:fs").appendFileSync(${JSON.stringify(log)}, JSON.stringify({ pid: process.pid, execArgv: process.execArgv, arenas: process.env.MALLOC_ARENA_MAX }) + "\\n")\n`,
  )
  writeFileSync(log, "")
  await peel(args, { NODE_OPTIONS: `--require ${preload} ${nodeOptions}`.trim() })
  return readFileSync(log, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as { pid: number; execArgv: Array<string>; arenas?: string })
}

describe.skipIf(process.platform === "win32")("node flags of the peel process", () => {
  it("a bulk run restarts once, in the same process, with the bin's heap flags and malloc arenas", async () => {
    const seen = await starts(["run", "missing.yaml", "--input", "missing.jsonl"])
    expect(seen).toHaveLength(2)
    expect(seen[1]!.pid).toBe(seen[0]!.pid)
    expect(seen[0]!.execArgv).not.toContain(nodeFlags[0])
    for (const flag of nodeFlags) expect(seen[1]!.execArgv).toContain(flag)
    expect(seen[0]!.arenas).toBeUndefined()
    expect(seen[1]!.arenas).toBe(nodeEnvironment.MALLOC_ARENA_MAX)
  })

  it("other commands, and bulk runs given heap flags of their own, start as they are", async () => {
    expect(await starts(["models"])).toHaveLength(1)
    const own = await starts(["run", "missing.yaml", "--input=missing.jsonl"], "--max-old-space-size=512")
    expect(own).toHaveLength(1)
    expect(own[0]!.execArgv).not.toContain(nodeFlags[0])
  })
})
