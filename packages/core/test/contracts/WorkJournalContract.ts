/**
 * The work journal's store contract: what every {@link WorkJournalShape} implementation must do, whatever
 * holds the records (SQLite now, Postgres next). Call {@link workJournalContract} from a test file with a
 * way to make a fresh, empty store and to connect to it; every case runs against it.
 *
 * What it pins down, because the batch path's correctness rests on it:
 * - **compare-and-set**: `updateRequest` with `onlyIf` changes a request only in that state, and of two
 *   racing writers exactly one wins (two connections when the store can be shared);
 * - **intent before send**: `openJob` journals the job as an `intent` and claims its members in one step,
 *   before the caller sends anything; a member another run took means nothing changes at all;
 * - **totals**: counts per state and the sum of costs, over all requests or some keys;
 * - keys are `(id, hash)`: the same id with another identity is another request;
 * - **claims**: several workers sharing one input each claim a request before making it; a claim holds
 *   until its lease expires (renewed while the worker lives), and two workers never hold one request.
 */
import { Effect, type Scope } from "effect"
import { describe, expect, it } from "vitest"
import type { JournalError, RequestKey, WorkJournalShape } from "../../src/work/WorkRecords.ts"

/** A store under test. @category model */
export interface StoreUnderTest {
  /** Connect to the store (a new connection each time, all to the same records), for the Scope's life. */
  readonly connect: Effect.Effect<WorkJournalShape, JournalError, Scope.Scope>
  /**
   * Whether two connections reach the same records (a file, a server). A store that lives in one
   * connection (SQLite `:memory:`) skips the cases that need two.
   */
  readonly shared: boolean
}

const key = (id: string, hash = `identity-${id}`): RequestKey => ({ id, hash })
const entry = (id: string, hash?: string) => ({
  key: key(id, hash),
  request: { id, prompt: `prompt ${id}` },
  plan: { model: "gemini-3-pro-image", candidates: [{ channel: "batch", expectedCostUsd: 0.067 }] },
})
const job = (name: string) => ({
  key: name,
  displayName: `peel-${name}`,
  channel: "batch",
  model: "gemini-3-pro-image",
  pipeline: "/pipelines/bulk.yaml",
  outDir: "/out",
})

/**
 * Register the contract's cases for one store implementation. `fresh` makes a new, empty store for each
 * case.
 *
 * @category contract
 */
export const workJournalContract = (name: string, fresh: () => StoreUnderTest): void => {
  const run = <A>(
    use: (journal: WorkJournalShape, store: StoreUnderTest) => Effect.Effect<A, unknown, Scope.Scope>,
  ) => {
    const store = fresh()
    return Effect.runPromise(Effect.scoped(Effect.flatMap(store.connect, (journal) => use(journal, store))))
  }

  describe(`work journal store contract: ${name}`, () => {
    it("adds requests as pending in order; adding again leaves them as they are", () =>
      run((journal) =>
        Effect.gen(function* () {
          yield* journal.add([entry("a"), entry("b")])
          yield* journal.updateRequest(key("a"), { state: "done", file: "/out/a.png", addCostUsd: 0.067 })
          yield* journal.add([entry("a"), entry("c")])
          const records = yield* journal.requests()
          expect(records.map((record) => [record.id, record.state])).toEqual([
            ["a", "done"],
            ["b", "pending"],
            ["c", "pending"],
          ])
          const a = yield* journal.request(key("a"))
          expect(a).toMatchObject({ id: "a", hash: "identity-a", file: "/out/a.png", costUsd: 0.067, sends: 0 })
          expect(a?.request).toEqual({ id: "a", prompt: "prompt a" })
          expect(a?.plan).toEqual(entry("a").plan)
          expect(yield* journal.request(key("missing"))).toBeUndefined()
        }),
      ))

    it("keys a request by id and identity: the same id asking for another image is another request", () =>
      run((journal) =>
        Effect.gen(function* () {
          yield* journal.add([entry("cover", "seed-1")])
          yield* journal.updateRequest(key("cover", "seed-1"), { state: "done" })
          yield* journal.add([entry("cover", "seed-2")])
          expect((yield* journal.request(key("cover", "seed-1")))?.state).toBe("done")
          expect((yield* journal.request(key("cover", "seed-2")))?.state).toBe("pending")
          expect((yield* journal.requests({ keys: [key("cover", "seed-2")] })).map((record) => record.hash)).toEqual([
            "seed-2",
          ])
        }),
      ))

    it("compare-and-set: onlyIf changes a request only in that state, and says whether it did", () =>
      run((journal) =>
        Effect.gen(function* () {
          yield* journal.add([entry("a")])
          expect(yield* journal.updateRequest(key("a"), { onlyIf: "queued", state: "done", addCostUsd: 1 })).toBe(false)
          expect(yield* journal.request(key("a"))).toMatchObject({ state: "pending", costUsd: 0 })
          expect(yield* journal.updateRequest(key("a"), { onlyIf: "pending", state: "running" })).toBe(true)
          expect((yield* journal.request(key("a")))?.state).toBe("running")
          // two writers racing to record one result: exactly one wins, the cost is added once
          const racing = yield* Effect.all(
            [1, 2, 3, 4].map(() =>
              journal.updateRequest(key("a"), { onlyIf: "running", state: "done", addCostUsd: 0.067 }),
            ),
            { concurrency: "unbounded" },
          )
          expect(racing.filter(Boolean).length).toBe(1)
          expect(yield* journal.request(key("a"))).toMatchObject({ state: "done", costUsd: 0.067 })
          // no such request: nothing to change
          expect(yield* journal.updateRequest(key("nobody"), { state: "done" })).toBe(false)
        }),
      ))

    it("compare-and-set holds across two connections (two processes sharing the store)", async (context) => {
      const store = fresh()
      if (!store.shared) return context.skip()
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const one = yield* store.connect
            const two = yield* store.connect
            yield* one.add([entry("a"), entry("b")])
            yield* two.add([entry("a")])
            expect((yield* two.requests()).map((record) => record.id)).toEqual(["a", "b"])
            const results = yield* Effect.all(
              [one, two, one, two].map((journal) =>
                journal.updateRequest(key("a"), { onlyIf: "pending", state: "running" }),
              ),
              { concurrency: "unbounded" },
            )
            expect(results.filter(Boolean).length).toBe(1)
            // a job claims only what no other connection took
            expect(yield* one.openJob(job("k1"), [key("b")])).toBe(true)
            expect(yield* two.openJob(job("k2"), [key("b")])).toBe(false)
            expect((yield* two.job("k1"))?.state).toBe("intent")
            expect(yield* two.job("k2")).toBeUndefined()
          }),
        ),
      )
    })

    it("intent before send: openJob journals the job as an intent and claims its members in one step", () =>
      run((journal) =>
        Effect.gen(function* () {
          yield* journal.add([entry("a"), entry("b"), entry("c")])
          expect(yield* journal.openJob(job("k1"), [key("a"), key("b")])).toBe(true)
          // …before anything was sent: the intent carries the display name a crashed run looks up upstream
          const intent = yield* journal.job("peel-k1")
          expect(intent).toMatchObject({ key: "k1", state: "intent", requests: 2, channel: "batch", outDir: "/out" })
          expect(intent?.name).toBeUndefined()
          expect((yield* journal.jobs({ states: ["intent"] })).map((found) => found.key)).toEqual(["k1"])
          for (const id of ["a", "b"])
            expect(yield* journal.request(key(id))).toMatchObject({
              state: "queued",
              job: "k1",
              channel: "batch",
              sends: 1,
            })
          expect((yield* journal.requests({ job: "k1" })).map((record) => record.id)).toEqual(["a", "b"])
          // confirmed with the upstream's name: found by it from then on
          yield* journal.updateJob("k1", { state: "pending", name: "batches/123" })
          expect((yield* journal.job("batches/123"))?.key).toBe("k1")
          expect((yield* journal.job("k1"))?.state).toBe("pending")
        }),
      ))

    it("a job that would claim a request another run took changes nothing at all", () =>
      run((journal) =>
        Effect.gen(function* () {
          yield* journal.add([entry("a"), entry("b"), entry("c")])
          expect(yield* journal.openJob(job("k1"), [key("b")])).toBe(true)
          expect(yield* journal.openJob(job("k2"), [key("a"), key("b"), key("c")])).toBe(false)
          expect(yield* journal.job("k2")).toBeUndefined()
          expect(yield* journal.job("peel-k2")).toBeUndefined()
          expect(yield* journal.request(key("a"))).toMatchObject({ state: "pending", sends: 0 })
          expect(yield* journal.request(key("c"))).toMatchObject({ state: "pending", sends: 0 })
          expect((yield* journal.request(key("b")))?.job).toBe("k1")
          // a request that was never added cannot be claimed either
          expect(yield* journal.openJob(job("k3"), [key("ghost")])).toBe(false)
        }),
      ))

    it("updateJob changes the members still queued in the job, and only those", () =>
      run((journal) =>
        Effect.gen(function* () {
          yield* journal.add([entry("a"), entry("b"), entry("c")])
          yield* journal.openJob(job("k1"), [key("a"), key("b")])
          yield* journal.updateRequest(key("a"), { onlyIf: "queued", state: "done", addCostUsd: 0.0335 })
          yield* journal.updateJob(
            "k1",
            { state: "expired", error: "the job expired" },
            { state: "pending", unsent: true },
          )
          expect(yield* journal.job("k1")).toMatchObject({ state: "expired", error: "the job expired" })
          expect(yield* journal.request(key("a"))).toMatchObject({ state: "done", sends: 1 })
          expect(yield* journal.request(key("b"))).toMatchObject({ state: "pending", sends: 0 })
          expect((yield* journal.request(key("c")))?.state).toBe("pending")
          expect((yield* journal.jobs({ states: ["intent", "pending"] })).length).toBe(0)
          expect((yield* journal.jobs({ states: [] })).length).toBe(0)
        }),
      ))

    it("totals count each state and sum the costs, over all requests or some keys", () =>
      run((journal) =>
        Effect.gen(function* () {
          yield* journal.add(["a", "b", "c", "d", "e", "f"].map((id) => entry(id)))
          yield* journal.updateRequest(key("a"), { state: "done", addCostUsd: 0.1 })
          yield* journal.updateRequest(key("a"), { addCostUsd: 0.2 })
          yield* journal.updateRequest(key("b"), { state: "failed", addCostUsd: 0.000001 })
          yield* journal.updateRequest(key("c"), { state: "cancelled" })
          yield* journal.updateRequest(key("d"), { state: "running" })
          yield* journal.openJob(job("k1"), [key("e")])
          expect(yield* journal.totals()).toEqual({
            total: 6,
            done: 1,
            failed: 1,
            cancelled: 1,
            queued: 2,
            pending: 1,
            costUsd: 0.300001,
          })
          expect(yield* journal.totals([key("a"), key("f"), key("nobody")])).toEqual({
            total: 2,
            done: 1,
            failed: 0,
            cancelled: 0,
            queued: 0,
            pending: 1,
            costUsd: 0.3,
          })
        }),
      ))

    it("claims: pending requests in the order asked, each once; a claim that holds is not taken", () =>
      run((journal) =>
        Effect.gen(function* () {
          yield* journal.add(["a", "b", "c", "d"].map((id) => entry(id)))
          const keys = ["d", "c", "b", "a"].map((id) => key(id))
          const first = yield* journal.claim({ worker: "w1", keys, limit: 2, leaseMillis: 60_000 })
          expect(first.map((record) => record.id)).toEqual(["d", "c"])
          expect(first[0]).toMatchObject({ state: "running", worker: "w1" })
          expect(first[0]!.leaseUntil).toBeGreaterThan(Date.now())
          expect(yield* journal.request(key("d"))).toMatchObject({ state: "running", worker: "w1" })
          const second = yield* journal.claim({ worker: "w2", keys, limit: 5, leaseMillis: 60_000 })
          expect(second.map((record) => record.id)).toEqual(["b", "a"])
          expect(yield* journal.claim({ worker: "w3", keys, limit: 5, leaseMillis: 60_000 })).toEqual([])
          // ended requests are not claimed again, and their claim is gone
          yield* journal.updateRequest(key("a"), { state: "done", file: "/out/a.png" })
          expect((yield* journal.request(key("a")))?.worker).toBeUndefined()
          expect((yield* journal.request(key("a")))?.leaseUntil).toBeUndefined()
          // given back: claimable again
          yield* journal.updateRequest(key("b"), { onlyIf: "running", state: "pending" })
          expect(
            (yield* journal.claim({ worker: "w3", keys, limit: 5, leaseMillis: 60_000 })).map((record) => record.id),
          ).toEqual(["b"])
          // a request that was never added, or nothing asked for: nothing claimed
          expect(yield* journal.claim({ worker: "w3", keys: [key("ghost")], limit: 5, leaseMillis: 1 })).toEqual([])
          expect(yield* journal.claim({ worker: "w3", keys: [], limit: 5, leaseMillis: 1 })).toEqual([])
        }),
      ))

    it("claims: an expired claim (a dead worker) is taken over; renewing keeps a live one", () =>
      run((journal) =>
        Effect.gen(function* () {
          yield* journal.add([entry("a"), entry("b"), entry("c")])
          const keys = [key("a"), key("b"), key("c")]
          // already expired when made: its worker is as good as dead
          expect((yield* journal.claim({ worker: "dead", keys: [key("a")], limit: 1, leaseMillis: -1 })).length).toBe(1)
          expect((yield* journal.claim({ worker: "alive", keys: [key("b")], limit: 1, leaseMillis: -1 })).length).toBe(
            1,
          )
          // the living worker renews its claims; the dead one does not
          expect(yield* journal.renew("alive", 60_000)).toBe(1)
          expect(yield* journal.renew("nobody", 60_000)).toBe(0)
          const taken = yield* journal.claim({ worker: "w2", keys, limit: 5, leaseMillis: 60_000 })
          expect(taken.map((record) => record.id)).toEqual(["a", "c"])
          expect(yield* journal.request(key("a"))).toMatchObject({ state: "running", worker: "w2" })
          expect((yield* journal.request(key("b")))?.worker).toBe("alive")
          // a running request without any claim (journaled before claims existed) is claimable
          yield* journal.add([entry("old")])
          yield* journal.updateRequest(key("old"), { state: "running" })
          expect(
            (yield* journal.claim({ worker: "w2", keys: [key("old")], limit: 1, leaseMillis: 60_000 })).length,
          ).toBe(1)
        }),
      ))

    it("claims: a failure from before this worker started is tried again; a newer one is not", () =>
      run((journal) =>
        Effect.gen(function* () {
          yield* journal.add([entry("a")])
          yield* journal.updateRequest(key("a"), { state: "failed", error: "boom" })
          const keys = [key("a")]
          expect(yield* journal.claim({ worker: "w", keys, limit: 1, leaseMillis: 60_000 })).toEqual([])
          const updated = (yield* journal.request(key("a")))!.updatedAt
          expect(
            yield* journal.claim({ worker: "w", keys, limit: 1, leaseMillis: 60_000, failedBefore: updated }),
          ).toEqual([])
          const again = yield* journal.claim({
            worker: "w",
            keys,
            limit: 1,
            leaseMillis: 60_000,
            failedBefore: updated + 1,
          })
          expect(again.map((record) => [record.id, record.state])).toEqual([["a", "running"]])
        }),
      ))

    it("claims across connections: workers racing over one input each get their own requests", async (context) => {
      const store = fresh()
      if (!store.shared) return context.skip()
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const connections = yield* Effect.all([store.connect, store.connect, store.connect])
            const ids = Array.from({ length: 20 }, (_, index) => `r${index}`)
            yield* connections[0]!.add(ids.map((id) => entry(id)))
            const keys = ids.map((id) => key(id))
            const claimed = yield* Effect.all(
              Array.from({ length: 12 }, (_, index) =>
                connections[index % 3]!.claim({ worker: `w${index}`, keys, limit: 2, leaseMillis: 60_000 }),
              ),
              { concurrency: "unbounded" },
            )
            const all = claimed.flat().map((record) => record.id)
            expect(all.length).toBe(20)
            expect(new Set(all).size).toBe(20)
            const owners = yield* connections[1]!.requests({ keys })
            expect(owners.every((record) => record.state === "running" && record.worker !== undefined)).toBe(true)
          }),
        ),
      )
    })

    it("what a connection wrote is there for the next one (a run after a crash)", async (context) => {
      const store = fresh()
      if (!store.shared) return context.skip()
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const first = yield* store.connect
            yield* first.add([entry("a"), entry("b")])
            yield* first.openJob(job("k1"), [key("a")])
          }),
        ),
      )
      await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const next = yield* store.connect
            expect((yield* next.jobs({ states: ["intent"] })).map((found) => found.displayName)).toEqual(["peel-k1"])
            expect((yield* next.request(key("a")))?.state).toBe("queued")
            expect((yield* next.totals()).total).toBe(2)
          }),
        ),
      )
    })
  })
}
