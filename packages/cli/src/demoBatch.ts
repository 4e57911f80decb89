/**
 * The batch part of `pnpm demo`: three `urgency: batch` requests through `pipelines/bulk.yaml` against the
 * demo's simulator (a job takes 30 ms of the demo's scaled time instead of hours): journaled, sent as jobs
 * (one per model), polled with backoff, collected into the output folder — and the cost beside what the
 * same images cost in real time.
 *
 * @since 0.3.0
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BatchWork, Catalog, Money, type Request, Session, WorkJournal } from "@peel/core"
import type { Simulator } from "@peel/simulator"
import { Effect, Result } from "effect"
import { printOpenError } from "./output.ts"
import { loadOptions } from "./plugins.ts"

const requests: ReadonlyArray<Request.ImageRequest> = [
  { id: "batch-lighthouse", prompt: "a lighthouse in a storm, oil painting", urgency: "batch" },
  { id: "batch-cover", prompt: "a city at night, book cover", use: "print", aspectRatio: "2:3", urgency: "batch" },
  { id: "batch-icon", prompt: "a paper plane icon", priority: "low", urgency: "batch" },
]

/** Run the batch scene; prints what happened and returns without failing the demo. */
export const batchDemo = (simulator: Simulator.Handle, outDir: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const write = (text: string) => process.stdout.write(`${text}\n`)
      write("\nbatch: urgency: batch work through Google's Batch API (pipelines/bulk.yaml), half price")
      const env = { ...process.env, GEMINI_BASE_URL: simulator.url, GEMINI_API_KEY: "demo-gemini-key" }
      for (const request of requests) rmSync(join(outDir, `${request.id}.png`), { force: true })
      const opened = yield* Effect.result(
        Session.open("pipelines/bulk.yaml", { out: outDir, load: { ...loadOptions, env } }),
      )
      if (Result.isFailure(opened)) {
        printOpenError("batch demo", "pipelines/bulk.yaml", opened.failure)
        return
      }
      const { runner, pipeline } = opened.success
      const output = opened.success.output!
      const state = mkdtempSync(join(tmpdir(), "peel-demo-state-"))
      const journal = yield* WorkJournal.make(WorkJournal.fileIn(state))
      const before = simulator.ledger().totals
      const work = BatchWork.make({
        runner,
        journal,
        output,
        pipelineFile: pipeline.file,
        onEvent: (event) => {
          if (event._tag === "Submitted") write(`  job ${event.job.name} (${event.job.model}): ${event.ids.join(", ")}`)
          if (event._tag === "Done") write(`  ${event.id}: ${event.file} ${Money.format(event.costUsd)}`)
          if (event._tag === "Failed") write(`  ${event.id}: failed: ${event.error}`)
        },
      })
      const enqueued = yield* work.enqueue(requests)
      const totals = yield* work.wait(enqueued.keys, { every: 20, max: 100 })
      const after = simulator.ledger().totals
      write(
        `  ${totals.done} images for ${Money.format(totals.costUsd)} at the batch price; ${Money.format(totals.costUsd / Catalog.batchDiscount)} in real time. ` +
          `Simulator billed ${Money.format(after.billedUsd - before.billedUsd)} for ${after.billedImages - before.billedImages} images. ` +
          `(npx pnpm peel batch --help: submit, status, collect, cancel, list)`,
      )
      rmSync(state, { recursive: true, force: true })
    }),
  ).pipe(
    Effect.catch((error) =>
      Effect.sync(() =>
        process.stderr.write(`batch demo: ${String((error as { message?: unknown }).message ?? error)}\n`),
      ),
    ),
  )
