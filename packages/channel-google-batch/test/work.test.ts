/**
 * Batch work (core `BatchWork` + `WorkJournal`) with this channel against the simulator's batch lifecycle:
 * submit, wait, collect into an output folder at the batch price; re-running sends nothing twice; a
 * crash between journal and send, or between send and confirm, is resolved by display name with no second
 * job; what did not come back is resubmitted or made in real time, as the pipeline says.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BatchWork, Output, Pipeline, Pricing, type Request, Runner, WorkJournal } from "@peel/core"
import { Simulator } from "@peel/simulator"
import { Effect } from "effect"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"

const root = join(import.meta.dirname, "..", "..", "..")
let sim: Simulator.Handle
beforeAll(async () => {
  sim = await Simulator.start({ port: 0, seed: 5, batch: { runningAfterMs: 10, doneAfterMs: 30, expireAfterMs: 80 } })
})
afterAll(() => sim.stop())
beforeEach(() => sim.reset())

const scratch = () => mkdtempSync(join(tmpdir(), "peel-batchwork-"))

/** bulk.yaml, optionally with another `unfinished` choice. */
const pipelineFile = (unfinished?: string): string => {
  const text = readFileSync(join(root, "pipelines", "bulk.yaml"), "utf8")
  if (unfinished === undefined) return join(root, "pipelines", "bulk.yaml")
  const path = join(scratch(), "bulk.yaml")
  writeFileSync(path, text.replace("{ unfinished: resubmit, resubmits: 1 }", unfinished))
  return path
}

interface Setup {
  readonly work: BatchWork.BatchWorkShape
  readonly journal: WorkJournal.WorkJournalShape
  readonly events: Array<BatchWork.Event>
}

/** Build runner, journal and batch work in a Scope, use them, close them (a "process"). */
const session = <A>(
  options: {
    readonly state: string
    readonly out: string
    readonly pipeline?: string
    readonly failpoint?: (point: string) => void
  },
  use: (setup: Setup) => Effect.Effect<A, unknown>,
): Promise<A> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Pipeline.load(options.pipeline ?? pipelineFile(), {
          env: { GEMINI_BASE_URL: sim.url, GEMINI_API_KEY: "batch-work-key-SECRET" },
          resolveFrom: [join(root, "package.json")],
        })
        const output = yield* Output.open(options.out)
        const runner = yield* Runner.make(pipeline, { output })
        const journal = yield* WorkJournal.make(WorkJournal.fileIn(options.state))
        const events: Array<BatchWork.Event> = []
        const work = BatchWork.make({
          runner,
          journal,
          output,
          pipelineFile: pipeline.file,
          onEvent: (event) => events.push(event),
          ...(options.failpoint === undefined ? {} : { failpoint: options.failpoint }),
        })
        return yield* use({ work, journal, events })
      }),
    ) as Effect.Effect<A, unknown>,
  )

const requests = (count: number, prefix = "r"): ReadonlyArray<Request.ImageRequest> =>
  Array.from({ length: count }, (_, index) => ({
    id: `${prefix}${index + 1}`,
    prompt: `a paper boat number ${index + 1}`,
    urgency: "batch" as const,
  }))

const creates = () =>
  sim.requests().filter((recorded) => recorded.method === "POST" && /:batchGenerateContent$/.test(recorded.path)).length
const pngs = (folder: string) =>
  readdirSync(folder)
    .filter((name) => name.endsWith(".png"))
    .sort()
const wait = { every: 5, max: 20 }
const batchPrice = Pricing.expectedCost("gemini-3-pro-image", "2K", "batch")

describe("BatchWork", () => {
  it("submits, waits, collects at half price; a re-run sends nothing and reports the same totals", async () => {
    const state = scratch()
    const out = scratch()
    const input = requests(3)
    const totals = await session({ state, out }, ({ work }) =>
      Effect.gen(function* () {
        const enqueued = yield* work.enqueue(input)
        expect(enqueued.refused).toEqual([])
        return yield* work.wait(enqueued.keys, wait)
      }),
    )
    expect(totals).toMatchObject({ total: 3, done: 3, failed: 0, pending: 0, queued: 0 })
    expect(totals.costUsd).toBeCloseTo(3 * batchPrice, 2)
    expect(pngs(out)).toEqual(["r1.png", "r2.png", "r3.png"])
    expect(sim.ledger().totals.billedImages).toBe(3)
    expect(sim.ledger().totals.billedUsd).toBeCloseTo(totals.costUsd, 6)
    expect(creates()).toBe(1)
    const again = await session({ state, out }, ({ work }) =>
      Effect.gen(function* () {
        const enqueued = yield* work.enqueue(input)
        expect(enqueued.done.length).toBe(3)
        return yield* work.wait(enqueued.keys, wait)
      }),
    )
    expect(again).toEqual(totals)
    expect(creates()).toBe(1)
  })

  it("two runs sharing one journal submit the same input at once: one job, each request once", async () => {
    const state = scratch()
    const out = scratch()
    const input = requests(4, "twin")
    // Two output folders (as two machines would have), one journal.
    const both = await Promise.all(
      [out, scratch()].map((folder) =>
        session({ state, out: folder }, ({ work }) =>
          Effect.gen(function* () {
            const enqueued = yield* work.enqueue(input)
            return yield* work.wait(enqueued.keys, wait)
          }),
        ),
      ),
    )
    expect(both.map((totals) => totals.done)).toEqual([4, 4])
    expect(both[0]?.costUsd).toBeCloseTo(4 * batchPrice, 2)
    expect(creates()).toBe(1)
    expect(sim.ledger().totals.billedImages).toBe(4)
  })

  it("splits work over jobs within the channel's bounds and by model", async () => {
    const path = join(scratch(), "bulk.yaml")
    writeFileSync(
      path,
      readFileSync(pipelineFile(), "utf8").replace(
        '    apiKey: "${GEMINI_API_KEY}"\n  google:',
        '    apiKey: "${GEMINI_API_KEY}"\n    maxJobRequests: 2\n  google:',
      ),
    )
    const out = scratch()
    const input = [
      ...requests(3),
      { id: "low", prompt: "a pebble", urgency: "batch" as const, priority: "low" as const },
    ]
    const totals = await session({ state: scratch(), out, pipeline: path }, ({ work, events }) =>
      Effect.gen(function* () {
        const enqueued = yield* work.enqueue(input)
        const result = yield* work.wait(enqueued.keys, wait)
        const submitted = events.filter((event) => event._tag === "Submitted")
        expect(submitted.map((event) => event._tag === "Submitted" && event.ids.length).sort()).toEqual([1, 1, 2])
        return result
      }),
    )
    expect(totals.done).toBe(4)
    expect(creates()).toBe(3)
  })

  for (const point of ["after-intent", "after-send"] as const) {
    it(`a crash ${point === "after-intent" ? "between journal and send" : "between send and confirm"} is resolved by display name: one job, every image`, async () => {
      const state = scratch()
      const out = scratch()
      const input = requests(2, `c-${point}-`)
      const crashed = await session(
        {
          state,
          out,
          failpoint: (reached) => {
            if (reached === point) throw new Error(`crash at ${point}`)
          },
        },
        ({ work }) =>
          Effect.gen(function* () {
            const enqueued = yield* work.enqueue(input)
            yield* work.submit(enqueued.keys)
          }),
      ).then(
        () => false,
        () => true,
      )
      expect(crashed).toBe(true)
      expect(creates()).toBe(point === "after-intent" ? 0 : 1)
      const totals = await session({ state, out }, ({ work, events }) =>
        Effect.gen(function* () {
          const enqueued = yield* work.enqueue(input)
          const result = yield* work.wait(enqueued.keys, wait)
          expect(events.find((event) => event._tag === "Recovered")).toMatchObject({ found: point === "after-send" })
          return result
        }),
      )
      expect(totals.done).toBe(2)
      expect(creates()).toBe(1)
      expect(sim.ledger().totals.billedImages).toBe(2)
      expect(pngs(out).length).toBe(2)
    })
  }

  it("a crash after an image is written and before it is journaled: collecting again writes nothing twice, bills nothing", async () => {
    const state = scratch()
    const out = scratch()
    const input = requests(3, "w")
    let writes = 0
    await session(
      {
        state,
        out,
        failpoint: (point) => {
          if (point === "after-write" && ++writes === 2) throw new Error("crash after the second image")
        },
      },
      ({ work }) =>
        Effect.gen(function* () {
          const enqueued = yield* work.enqueue(input)
          yield* work.wait(enqueued.keys, wait)
        }),
    ).catch(() => undefined)
    expect(pngs(out).length).toBe(2)
    const totals = await session({ state, out }, ({ work }) =>
      Effect.gen(function* () {
        const enqueued = yield* work.enqueue(input)
        return yield* work.wait(enqueued.keys, wait)
      }),
    )
    expect(totals.done).toBe(3)
    expect(totals.costUsd).toBeCloseTo(3 * batchPrice, 2)
    expect(pngs(out)).toEqual(["w1.png", "w2.png", "w3.png"])
    expect(sim.ledger().totals.billedImages).toBe(3)
    expect(creates()).toBe(1)
  })

  it("an expired job is resubmitted in a new job (resubmit, the default), then done", async () => {
    const out = scratch()
    sim.script("gemini-batch", ["hang"])
    const totals = await session({ state: scratch(), out }, ({ work, events }) =>
      Effect.gen(function* () {
        const enqueued = yield* work.enqueue(requests(2, "x"))
        const result = yield* work.wait(enqueued.keys, wait)
        expect(events.filter((event) => event._tag === "Requeued").length).toBe(2)
        return result
      }),
    )
    expect(totals.done).toBe(2)
    expect(creates()).toBe(2)
    expect(sim.ledger().totals.billedImages).toBe(2)
  })

  it("resubmits at most `resubmits` times, then reports", async () => {
    sim.script("gemini-batch", ["hang", "hang"])
    const totals = await session({ state: scratch(), out: scratch() }, ({ work }) =>
      Effect.gen(function* () {
        const enqueued = yield* work.enqueue(requests(1, "y"))
        return yield* work.wait(enqueued.keys, wait)
      }),
    )
    expect(totals).toMatchObject({ done: 0, failed: 1 })
    expect(creates()).toBe(2)
  })

  it("unfinished: realtime makes what a job did not bring back through the real-time channel; report reports it", async () => {
    sim.script("gemini-batch", ["ok", "ok", "503", "safety"])
    const totals = await session(
      { state: scratch(), out: scratch(), pipeline: pipelineFile("{ unfinished: realtime }") },
      ({ work, journal }) =>
        Effect.gen(function* () {
          const enqueued = yield* work.enqueue(requests(3, "rt"))
          const result = yield* work.wait(enqueued.keys, wait)
          const records = yield* journal.requests({ keys: enqueued.keys })
          expect(records.map((record) => [record.id, record.state, record.channel])).toEqual([
            ["rt1", "done", "batch"],
            ["rt2", "done", "google"],
            ["rt3", "failed", "batch"],
          ])
          expect(records[2]?.error).toContain("ContentBlocked")
          return result
        }),
    )
    expect(totals).toMatchObject({ done: 2, failed: 1 })
    expect(totals.costUsd).toBeCloseTo(batchPrice + Pricing.expectedCost("gemini-3-pro-image", "2K"), 2)
    sim.script("gemini-batch", ["hang"])
    const reported = await session(
      { state: scratch(), out: scratch(), pipeline: pipelineFile("{ unfinished: report }") },
      ({ work }) =>
        Effect.gen(function* () {
          const enqueued = yield* work.enqueue(requests(1, "rp"))
          return yield* work.wait(enqueued.keys, wait)
        }),
    )
    expect(reported).toMatchObject({ done: 0, failed: 1, costUsd: 0 })
  })

  it("refuses real-time requests and requests no batch channel can serve, before anything is sent", async () => {
    await session({ state: scratch(), out: scratch() }, ({ work }) =>
      Effect.gen(function* () {
        const enqueued = yield* work.enqueue([{ id: "now", prompt: "a fox" }])
        expect(enqueued.refused.map((entry) => entry.id)).toEqual(["now"])
      }),
    )
    expect(sim.ledger().totals.calls).toBe(0)
  })

  it("cancels a job: its requests are cancelled, and a later submit sends them again", async () => {
    sim.script("gemini-batch", ["hang"])
    const state = scratch()
    await session({ state, out: scratch() }, ({ work, journal }) =>
      Effect.gen(function* () {
        const enqueued = yield* work.enqueue(requests(2, "k"))
        const [job] = yield* work.submit(enqueued.keys)
        const cancelled = yield* work.cancel(job!)
        expect(cancelled.state).toBe("cancelled")
        expect(yield* journal.totals(enqueued.keys)).toMatchObject({ cancelled: 2 })
        const again = yield* work.enqueue(requests(2, "k"))
        expect((yield* journal.totals(again.keys)).pending).toBe(2)
      }),
    )
  })
})
