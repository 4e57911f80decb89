/**
 * The work journal store contract (`contracts/WorkJournalContract.ts`) against each store Peel ships: the
 * SQLite journal in a file (shared by connections, durable), in `:memory:`, and in a real Postgres server
 * (started for this file, a fresh database per case).
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll } from "vitest"
import { type PostgresServer, startPostgres } from "../../testkit/src/Postgres.ts"
import * as WorkJournal from "../src/work/WorkJournal.ts"
import { workJournalContract } from "./contracts/WorkJournalContract.ts"

workJournalContract("SQLite file", () => {
  const path = WorkJournal.fileIn(join(mkdtempSync(join(tmpdir(), "peel-journal-contract-")), "state"))
  return { connect: WorkJournal.make(path), shared: true }
})

workJournalContract("SQLite :memory:", () => ({ connect: WorkJournal.make(":memory:"), shared: false }))

let server: PostgresServer
let databases = 0
beforeAll(async () => {
  server = await startPostgres()
}, 60_000)
afterAll(() => server?.close())

workJournalContract("Postgres", () => {
  // one database per case, made on the first connection; every connection of the case reaches it
  let url: Promise<string> | undefined
  return {
    connect: Effect.flatMap(
      Effect.promise(() => {
        url ??= server.database(`journal_${++databases}`)
        return url
      }),
      (url) => WorkJournal.makePostgres(url),
    ),
    shared: true,
  }
})
