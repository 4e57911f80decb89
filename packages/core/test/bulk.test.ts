/**
 * Bulk runs in core (`Bulk`): each request is planned once per run — its reference images downloaded
 * once, however many stages look at it (routing, the spend cap, the journal, resume, the run itself) — and
 * a second run of the same input resumes from the output folder and the journal.
 */

import { mkdtempSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { Bulk, Output, Pipeline, type Request, Runner, WorkJournal } from "../src/index.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const pipelineFile = join(import.meta.dirname, "fixtures", "references.yaml")

/** A real HTTP server holding reference images; it counts the GETs of each path. */
let server: Server
let base = ""
const gets = new Map<string, number>()
beforeAll(async () => {
  server = createServer((request, response) => {
    gets.set(request.url ?? "", (gets.get(request.url ?? "") ?? 0) + 1)
    response.writeHead(200, { "content-type": "image/png" })
    response.end(Fixture.png)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
})
beforeEach(() => {
  Fixture.reset()
  gets.clear()
})

/**
 * One bulk run of `requests` over the folder's output and journal: planned up front (`prepare`), or read
 * as it goes (`start`, as `peel run --input` makes it).
 */
const bulkRun = (
  folder: string,
  requests: Iterable<Request.ImageRequest>,
  onEvent: (event: Bulk.Event) => void = () => {},
  how: "prepare" | "start" = "prepare",
) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Pipeline.load(pipelineFile, { env: {} })
        const output = yield* Output.open(join(folder, "out"))
        const runner = yield* Runner.make(pipeline, { output })
        const journal = yield* WorkJournal.make(WorkJournal.fileIn(join(folder, "state")))
        const bulk = Bulk.make({ runner, output, journal, pipelineFile })
        const prepared =
          how === "prepare" ? yield* bulk.prepare([...requests], { onEvent }) : yield* bulk.start(requests, { onEvent })
        const finished = yield* prepared.run({ concurrency: 2, maxSpendUsd: 100 })
        const totals = yield* prepared.totals
        return { finished, totals }
      }),
    ),
  )

describe("Bulk", () => {
  const requests: ReadonlyArray<Request.ImageRequest> = [
    { id: "fox", prompt: "a fox in this style", images: [] },
    { id: "owl", prompt: "an owl in this style", images: [] },
    { id: "pair", prompt: "two cats in this style", images: [], n: 2 },
  ]
  const withImages = () => requests.map((request) => ({ ...request, images: [`${base}/${request.id}.png`] }))

  it("plans each request once: its reference image is downloaded once per run, n images included", async () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-bulk-"))
    const first = await bulkRun(folder, withImages())
    expect(first.finished).toMatchObject({ toRun: 4, made: 4, skipped: 0, failed: 0 })
    expect(Object.fromEntries(gets)).toEqual({ "/fox.png": 1, "/owl.png": 1, "/pair.png": 1 })
    expect(Fixture.calls.get("main")?.map((call) => call.images?.length)).toEqual([1, 1, 1, 1])
    expect(first.totals).toMatchObject({ total: 4, done: 4 })
    expect(first.totals.costUsd).toBeCloseTo(0.4, 6)

    // Run again: every image is on disk, nothing is made, and still one download per request.
    const events: Array<Bulk.Event> = []
    const second = await bulkRun(folder, withImages(), (event) => events.push(event))
    expect(second.finished).toMatchObject({ toRun: 0, made: 0, skipped: 4 })
    expect(events.filter((event) => event._tag === "Outcome").length).toBe(4)
    expect(Object.fromEntries(gets)).toEqual({ "/fox.png": 2, "/owl.png": 2, "/pair.png": 2 })
    expect(Fixture.calls.get("main")?.length).toBe(4)
    expect(second.totals).toMatchObject({ total: 4, done: 4 })
    expect(second.totals.costUsd).toBeCloseTo(0.4, 6)
  })

  it("a request that cannot be planned fails alone, before any call; the others are made", async () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-bulk-"))
    const events: Array<Bulk.Event> = []
    const bad = { id: "bad", prompt: "a fox", images: [join(folder, "missing.png")] }
    const result = await bulkRun(folder, [...withImages().slice(0, 1), bad], (event) => events.push(event))
    expect(result.finished).toMatchObject({ made: 1, failed: 1 })
    const failed = events.flatMap((event) =>
      event._tag === "Outcome" && event.outcome._tag === "Failed" ? [event.outcome.failure.message] : [],
    )
    expect(failed).toEqual([expect.stringContaining("bad: InvalidRequest: bad: images[0]")])
    expect(Fixture.calls.get("main")?.length).toBe(1)
  })

  it("reads a streamed input as it goes: the first image is made long before the input is read to the end", async () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-bulk-"))
    const total = 300
    let read = 0
    /** A lazy input (as a reader over a file): counts what the bulk run has taken from it. */
    function* input(): Generator<Request.ImageRequest> {
      for (let index = 0; index < total; index += 1) {
        read += 1
        yield { id: `r${index}`, prompt: `a fox, number ${index}`, ...(index === 7 ? { n: 2 } : {}) }
      }
    }
    /** How much of the input had been read when each outcome was reported. */
    const readAt: Array<number> = []
    const first = await bulkRun(
      folder,
      { [Symbol.iterator]: input },
      (event) => {
        if (event._tag === "Outcome") readAt.push(read)
      },
      "start",
    )
    expect(first.finished).toMatchObject({ toRun: total + 1, started: total + 1, made: total + 1, failed: 0 })
    expect(Fixture.calls.get("main")?.length).toBe(total + 1)
    expect(first.totals).toMatchObject({ total: total + 1, done: total + 1 })
    // Read a chunk at a time as permits free up, never all of it before making the first image: at the
    // first outcome at most two chunks of 64 were read, and each later chunk was read after outcomes of
    // the one before it.
    expect(readAt[0]).toBeLessThanOrEqual(128)
    expect(readAt.filter((count) => count < total).length).toBeGreaterThan(total / 2)
    expect(readAt.at(-1)).toBe(total)

    // The same input again, streamed: everything is on disk, nothing is made, the journal's totals hold.
    read = 0
    const second = await bulkRun(folder, { [Symbol.iterator]: input }, undefined, "start")
    expect(second.finished).toMatchObject({ toRun: 0, made: 0, skipped: total + 1 })
    expect(Fixture.calls.get("main")?.length).toBe(total + 1)
    expect(second.totals).toMatchObject({ total: total + 1, done: total + 1 })
    expect(second.totals.costUsd).toBeCloseTo((total + 1) * 0.1, 6)
  })
})
