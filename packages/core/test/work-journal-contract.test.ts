/**
 * The work journal store contract (`contracts/WorkJournalContract.ts`) against each store Peel ships: the
 * SQLite journal in a file (shared by connections, durable) and in `:memory:`. A Postgres store adds one
 * line here.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as WorkJournal from "../src/work/WorkJournal.ts"
import { workJournalContract } from "./contracts/WorkJournalContract.ts"

workJournalContract("SQLite file", () => {
  const path = WorkJournal.fileIn(join(mkdtempSync(join(tmpdir(), "peel-journal-contract-")), "state"))
  return { connect: WorkJournal.make(path), shared: true }
})

workJournalContract("SQLite :memory:", () => ({ connect: WorkJournal.make(":memory:"), shared: false }))
