/** The SQLite work journal: requests and jobs survive a reopen, an intent is journaled before anything is sent, totals. */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as WorkJournal from "../src/work/WorkJournal.ts"

const withJournal = <A>(path: string, use: (journal: WorkJournal.WorkJournalShape) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(WorkJournal.make(path), use)))

const key = (id: string) => ({ id, hash: `hash-${id}` })
const record = (id: string) => ({ key: key(id), request: { id, prompt: `prompt ${id}` }, plan: { model: "m" } })

describe("WorkJournal (node:sqlite)", () => {
  it("keeps requests and jobs across a reopen; adding again leaves existing records alone", async () => {
    const path = WorkJournal.fileIn(join(mkdtempSync(join(tmpdir(), "peel-journal-")), "state"))
    await withJournal(path, (journal) =>
      Effect.gen(function* () {
        yield* journal.add([record("a"), record("b"), record("c")])
        yield* journal.openJob(
          { key: "k1", displayName: "peel-k1", channel: "batch", model: "m", pipeline: "/p.yaml", outDir: "/out" },
          [key("a"), key("b")],
        )
        yield* journal.updateRequest(key("c"), { state: "done", file: "/out/c.png", addCostUsd: 0.067 })
      }),
    )
    await withJournal(path, (journal) =>
      Effect.gen(function* () {
        yield* journal.add([record("a"), record("d")])
        const intent = yield* journal.job("peel-k1")
        expect(intent?.state).toBe("intent")
        expect(intent?.requests).toBe(2)
        expect((yield* journal.request(key("a")))?.state).toBe("queued")
        expect((yield* journal.request(key("a")))?.sends).toBe(1)
        expect((yield* journal.request(key("d")))?.state).toBe("pending")
        yield* journal.updateJob("k1", { state: "pending", name: "batches/1" })
        expect((yield* journal.job("batches/1"))?.key).toBe("k1")
        yield* journal.updateJob("k1", { state: "expired" }, { state: "pending", error: "the job expired" })
        expect((yield* journal.requests({ states: ["pending"] })).map((entry) => entry.id)).toEqual(["a", "b", "d"])
        const totals = yield* journal.totals()
        expect(totals).toMatchObject({ total: 4, done: 1, pending: 3, costUsd: 0.067 })
        expect((yield* journal.jobs({ states: ["intent"] })).length).toBe(0)
      }),
    )
  })

  it("claims only pending requests for a job: a request another run took is not sent twice", async () => {
    await withJournal(":memory:", (journal) =>
      Effect.gen(function* () {
        yield* journal.add([record("a"), record("b")])
        const job = { channel: "batch", model: "m", pipeline: "/p.yaml" }
        expect(yield* journal.openJob({ ...job, key: "k1", displayName: "peel-k1" }, [key("a")])).toBe(true)
        expect(yield* journal.openJob({ ...job, key: "k2", displayName: "peel-k2" }, [key("b"), key("a")])).toBe(false)
        expect(yield* journal.job("k2")).toBeUndefined()
        expect((yield* journal.request(key("b")))?.state).toBe("pending")
        expect((yield* journal.request(key("a")))?.job).toBe("k1")
      }),
    )
  })

  it("counts only the requests asked about", async () => {
    await withJournal(":memory:", (journal) =>
      Effect.gen(function* () {
        yield* journal.add([record("a"), record("b")])
        yield* journal.updateRequest(key("a"), { state: "failed", error: "blocked", addCostUsd: 0.01 })
        expect(yield* journal.totals([key("a")])).toMatchObject({ total: 1, failed: 1, costUsd: 0.01 })
      }),
    )
  })
})
