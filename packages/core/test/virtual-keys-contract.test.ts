/**
 * The virtual key store contract (`contracts/VirtualKeysContract.ts`) against each store Peel ships: memory,
 * the SQLite table in a state folder's journal file (shared by connections), and a real Postgres server
 * (started for this file, a database per case). A Redis store adds one line here. Then the pieces around the store: secrets, budgets as written on the command line.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { afterAll, beforeAll } from "vitest"
import { type PostgresServer, startPostgres } from "../../testkit/src/Postgres.ts"
import * as State from "../src/state/State.ts"
import * as VirtualKeys from "../src/state/VirtualKeys.ts"
import * as VirtualKeysSqlite from "../src/state/VirtualKeysSqlite.ts"
import * as WorkJournal from "../src/work/WorkJournal.ts"
import { virtualKeysContract } from "./contracts/VirtualKeysContract.ts"

virtualKeysContract("memory", () => ({ connect: VirtualKeys.makeMemory, shared: false }))

virtualKeysContract("SQLite file", () => {
  const path = WorkJournal.fileIn(join(mkdtempSync(join(tmpdir(), "peel-keys-contract-")), "state"))
  return { connect: VirtualKeysSqlite.make(path), shared: true }
})

let server: PostgresServer
let databases = 0
beforeAll(async () => {
  server = await startPostgres()
}, 60_000)
afterAll(() => server?.close())

virtualKeysContract("Postgres", () => {
  // one database per case, made on the first connection; every connection of the case reaches it
  let url: Promise<string> | undefined
  return {
    connect: Effect.flatMap(
      Effect.promise(() => {
        url ??= server.database(`keys_${++databases}`)
        return url
      }),
      (url) => State.makeVirtualKeysPostgres(url),
    ),
    shared: true,
  }
})

describe("virtual key secrets and budgets", () => {
  it("secrets are 256 random bits in base 62 behind peel_, each one different", () => {
    const secrets = new Set(Array.from({ length: 2000 }, VirtualKeys.newSecret))
    expect(secrets.size).toBe(2000)
    for (const secret of secrets) expect(VirtualKeys.looksLikeSecret(secret)).toBe(true)
    // every character of the alphabet appears, at about the same rate (no modulo bias towards the first ones)
    const counts = new Map<string, number>()
    for (const secret of secrets) for (const char of secret.slice(5)) counts.set(char, (counts.get(char) ?? 0) + 1)
    expect(counts.size).toBe(62)
    const expected = (2000 * 43) / 62
    for (const count of counts.values()) expect(Math.abs(count - expected) / expected).toBeLessThan(0.2)
    expect(VirtualKeys.looksLikeSecret("peel_short")).toBe(false)
    expect(VirtualKeys.looksLikeSecret(`sk-${"a".repeat(43)}`)).toBe(false)
  })

  it("a model allow-list counts aliases and retired ids as the model they stand for", () => {
    const record = (models?: ReadonlyArray<string>): VirtualKeys.KeyRecord => ({
      id: "vk_0",
      name: "k",
      prefix: "peel_",
      hash: "",
      createdAt: 0,
      limits: models === undefined ? {} : { models },
    })
    expect(VirtualKeys.allowsModel(record(), "gemini-2.5-flash-image")).toBe(true)
    const pro = record(["nano-banana-pro"])
    expect(VirtualKeys.allowsModel(pro, "gemini-3-pro-image")).toBe(true)
    expect(VirtualKeys.allowsModel(pro, "gemini-3-pro-image-preview")).toBe(true)
    expect(VirtualKeys.allowsModel(pro, "gemini-3.1-flash-image")).toBe(false)
    expect(VirtualKeys.allowsModel(pro, "nano-banana")).toBe(false)
  })

  it("a budget is USD/WINDOW", () => {
    expect(VirtualKeys.parseBudget("5/1d")).toEqual({ limitUsd: 5, window: "1d" })
    expect(VirtualKeys.parseBudget("$0.50 / 12h")).toEqual({ limitUsd: 0.5, window: "12h" })
    expect(VirtualKeys.parseBudget("5")).toMatch(/expected a budget as USD\/WINDOW/)
    expect(VirtualKeys.parseBudget("0/1d")).toMatch(/above \$0/)
    expect(VirtualKeys.parseBudget("5/fortnight")).toMatch(/expected a window such as 1d/)
    expect(VirtualKeys.formatBudget({ limitUsd: 0.5, window: "12h" })).toBe("0.5/12h")
  })
})
