/**
 * Bulk runs: many requests through one runner, resumable and safe to kill. One service that `peel run`,
 * the embedding API and the gateway share; a caller only chooses the requests and prints events.
 *
 * - **Planned once**: each request is planned once for the run ({@link Runner.RunnerShape.prepare}: `n`
 *   images are ID-1 … ID-n, reference images read or downloaded once) and that plan is what routes it,
 *   admits it under a spend cap, journals it and runs it.
 * - **Batch routing**: a request whose plan is batch work goes to a batch job ({@link BatchWork}); the rest
 *   are made in real time. Batch work that no channel takes in a batch is made in real time (one
 *   {@link Event} says how many).
 * - **Journal**: with a work journal, every real-time request is journaled before it starts (`running`)
 *   and when it ends (state, file, cost), so the totals cover every run of the same input.
 * - **Crash recovery**: a request an earlier run had in flight when it died (`running`, no image on disk)
 *   may have been billed: one event says so, with what it could have cost, and it is made again. One
 *   whose image was saved before the process died is completed at its expected price.
 * - **Resume**: a request whose image is already in the output folder, made from the same request, is
 *   skipped; one whose request changed since is made again (an event says so).
 * - **Stopping**: when `stop` completes, no request starts; those in flight have `drainMillis` to finish,
 *   then they are abandoned. With `maxSpendUsd`, no request starts that could pass the cap.
 *
 * @since 0.4.0
 */
import type { InvalidRequest } from "@peel/contract/Errors"
import type { ImageRequest } from "@peel/contract/Request"
import { Context, Effect, Layer, Option, Schema, Semaphore, Stream } from "effect"
import type { OutputDirectory } from "../output/Output.ts"
import * as Plan from "../plan/Plan.ts"
import type { Outcome, Planned, RunnerShape } from "../runner/Runner.ts"
import * as Budget from "../spend/Budget.ts"
import * as BatchWork from "../work/BatchWork.ts"
import type { JournalError, RequestKey, RequestRecord, Totals, WorkJournalShape } from "../work/WorkJournal.ts"

/** What happens during a bulk run, as it happens (printing, progress, logs). @category models */
export type Event =
  /** A real-time request ended (made, failed, or skipped because its image is already on disk). */
  | { readonly _tag: "Outcome"; readonly outcome: Outcome }
  /** Its image is on disk but was made from another request (or is a placeholder): made again. */
  | { readonly _tag: "Changed"; readonly id: string; readonly file: string; readonly placeholder: boolean }
  /** Requests that asked for batch work no channel takes in a batch: made in real time. */
  | { readonly _tag: "Unbatched"; readonly count: number }
  /** Requests an earlier run had in flight when it stopped: perhaps billed, made again. */
  | { readonly _tag: "InFlightBefore"; readonly ids: ReadonlyArray<string>; readonly upToUsd: number }
  /** Batch requests left alone: already done, or already in a job. */
  | { readonly _tag: "BatchKnown"; readonly done: number; readonly inJob: number }
  /** What the batch work did (jobs sent, polled, collected). */
  | { readonly _tag: "Batch"; readonly event: BatchWork.Event }
  /** `stop` completed: no request starts; `inFlight` may finish within the drain time. */
  | { readonly _tag: "Stopping"; readonly inFlight: number; readonly drainMillis: number }
  /** The drain time passed with requests still in flight: abandoned. */
  | { readonly _tag: "Abandoned"; readonly count: number; readonly drainMillis: number }

/** @category models */
export interface Options {
  readonly runner: RunnerShape
  readonly output: OutputDirectory
  /** The pipeline file, recorded on batch jobs so later commands can rebuild their channel. */
  readonly pipelineFile: string
  /** The work journal: resume and totals across runs, batch jobs. Without one, batch work is made in real time. */
  readonly journal?: WorkJournalShape | undefined
  /** Test hook for batch work: called at named points to crash there ({@link BatchWork.Options}). */
  readonly failpoint?: ((point: string) => void) | undefined
}

/** How the real-time part runs. @category models */
export interface RunOptions {
  /** Requests in flight at once. */
  readonly concurrency: number
  /** Start no request that could take the run's spend past this. */
  readonly maxSpendUsd?: number | undefined
  /** When this completes, no request starts; those in flight have `drainMillis` to finish. */
  readonly stop?: Effect.Effect<unknown> | undefined
  /** How long requests in flight may take to finish after `stop` (unbounded when unset). */
  readonly drainMillis?: number | undefined
}

/** How the real-time part ended. @category models */
export interface Finished {
  /** Requests to make in real time (not skipped). */
  readonly toRun: number
  readonly started: number
  readonly finished: number
  readonly made: number
  readonly skipped: number
  readonly failed: number
  /** What this run's real-time requests cost. */
  readonly spentUsd: number
  readonly stopped: boolean
  /** `maxSpendUsd` stopped the run: the cap and what the next request could have cost. */
  readonly capped?: { readonly limitUsd: number; readonly requestedUsd: number } | undefined
}

/** A bulk run, planned and journaled, ready to go. @category models */
export interface Prepared {
  /** Every request, planned (n images: one each), in input order. */
  readonly planned: ReadonlyArray<Planned>
  /** The ones made in real time. */
  readonly realtime: ReadonlyArray<Planned>
  /** The ones sent to batch jobs. */
  readonly batch: ReadonlyArray<Planned>
  /** Where the journal lives, when there is one. */
  readonly location: string | undefined
  /** Send the batch work (journaled first), then make the real-time requests. */
  readonly run: (options: RunOptions) => Effect.Effect<Finished, JournalError>
  /** Started and finished so far (for a summary when the run is interrupted). */
  readonly progress: () => { readonly toRun: number; readonly started: number; readonly finished: number }
  /** Poll with backoff and collect until every batch request is done or failed. */
  readonly waitBatch: (poll: { readonly every: number; readonly max: number }) => Effect.Effect<Totals, JournalError>
  /** Totals over every request of this input in the journal, across runs (zero without a journal). */
  readonly totals: Effect.Effect<Totals, JournalError>
}

/** @category models */
export interface BulkShape {
  /** Plan every request once, route it, journal it and report what earlier runs left in flight. */
  readonly prepare: (
    requests: ReadonlyArray<ImageRequest>,
    options?: { readonly onEvent?: ((event: Event) => void) | undefined },
  ) => Effect.Effect<Prepared, JournalError>
}

/** Bulk runs as a service. @category services */
export class Bulk extends Context.Service<Bulk, BulkShape>()("@peel/core/Bulk") {
  static readonly layer = (options: Options): Layer.Layer<Bulk> => Layer.succeed(Bulk, make(options))
}

/** What a journaled plan says the first candidate costs: the most a lost in-flight request was billed. */
const StoredPlan = Schema.Struct({
  candidates: Schema.Array(Schema.Struct({ expectedCostUsd: Schema.Number })),
})
const decodeStoredPlan = Schema.decodeUnknownOption(StoredPlan)

/** @category accessors */
export const expectedCostOf = (record: RequestRecord): number =>
  Option.match(decodeStoredPlan(record.plan), {
    onNone: () => 0,
    onSome: (plan) => plan.candidates[0]?.expectedCostUsd ?? 0,
  })

const noTotals: Totals = { total: 0, done: 0, failed: 0, cancelled: 0, queued: 0, pending: 0, costUsd: 0 }

const costOf = (outcome: Outcome): number =>
  outcome._tag === "Done" ? outcome.result.costUsd : outcome._tag === "Failed" ? outcome.failure.costUsd : 0

/** @category constructors */
export const make = (options: Options): BulkShape => {
  const { runner, output, journal } = options

  const prepare: BulkShape["prepare"] = (requests, prepareOptions = {}) =>
    Effect.gen(function* () {
      const emit = (event: Event) => prepareOptions.onEvent?.(event)
      const planned = (yield* Effect.forEach(requests, runner.prepare, { concurrency: 8 })).flat()
      // Each request's journal key holds its identity, which comes from its plan: made once, here.
      const keyed = new Map<ImageRequest, RequestKey>()
      for (const item of planned)
        keyed.set(item.request, BatchWork.keyOf(item.request, "_tag" in item.plan ? undefined : item.plan))
      const keyOf = (request: ImageRequest): RequestKey => keyed.get(request) ?? BatchWork.keyOf(request)
      const realtime: Array<Planned> = []
      const batch: Array<Planned> = []
      const fresh: Array<{ key: RequestKey; request: ImageRequest; plan: unknown }> = []
      let unbatched = 0
      for (const item of planned) {
        const plan = "_tag" in item.plan ? undefined : item.plan
        if (plan?.urgency === "batch" && journal !== undefined) {
          batch.push(item)
          continue
        }
        realtime.push(item)
        if (plan === undefined) continue
        if (plan.adjustments.some((adjustment) => adjustment.field === "urgency")) unbatched += 1
        fresh.push({
          key: keyOf(item.request),
          request: item.request,
          plan: Plan.toJson(plan, runner.channels),
        })
      }
      if (unbatched > 0) emit({ _tag: "Unbatched", count: unbatched })
      const keys = planned.map((item) => keyOf(item.request))
      if (journal !== undefined) {
        // Requests an earlier run had in flight when it stopped (kill -9): the upstream may have billed them.
        const inFlight = (yield* journal.requests({
          keys: fresh.map((entry) => entry.key),
          states: ["running"],
        })).filter((record) => output.lookup(record.id, record.hash)._tag !== "Current")
        if (inFlight.length > 0)
          emit({
            _tag: "InFlightBefore",
            ids: inFlight.map((record) => record.id),
            upToUsd: inFlight.reduce((sum, record) => sum + expectedCostOf(record), 0),
          })
        yield* journal.add(fresh)
      }
      const work =
        journal === undefined
          ? undefined
          : BatchWork.make({
              runner,
              journal,
              output,
              pipelineFile: options.pipelineFile,
              onEvent: (event) => emit({ _tag: "Batch", event }),
              failpoint: options.failpoint,
            })

      const record = (outcome: Outcome): Effect.Effect<void, JournalError> => {
        if (journal === undefined) return Effect.void
        const key = keyOf(outcome.request)
        if (outcome._tag === "Done")
          return Effect.asVoid(
            journal.updateRequest(key, {
              state: "done",
              channel: outcome.result.channel,
              addCostUsd: outcome.result.costUsd,
              ...(outcome.result.file === undefined ? {} : { file: outcome.result.file }),
            }),
          )
        if (outcome._tag === "Failed")
          return Effect.asVoid(
            journal.updateRequest(key, {
              state: "failed",
              error: outcome.failure.message,
              addCostUsd: outcome.failure.costUsd,
            }),
          )
        // Skipped: the image is on disk. A record a killed run did not finish (the image saved, the process
        // gone before its answer was journaled) is completed at its expected price: it was billed.
        return Effect.flatMap(journal.request(key), (existing) => {
          if (existing === undefined || existing.state === "done") return Effect.void
          const expected = existing.state === "running" ? expectedCostOf(existing) : 0
          return Effect.asVoid(journal.updateRequest(key, { state: "done", file: outcome.file, addCostUsd: expected }))
        })
      }

      let batchKeys: ReadonlyArray<RequestKey> = []
      const submitBatch = Effect.gen(function* () {
        if (work === undefined || batch.length === 0) return
        const enqueued = yield* work.enqueue(batch)
        batchKeys = enqueued.keys
        if (enqueued.done.length > 0 || enqueued.inJob.length > 0)
          emit({ _tag: "BatchKnown", done: enqueued.done.length, inJob: enqueued.inJob.length })
        yield* work.recover()
        yield* work.submit(enqueued.keys)
      })

      let toRun = 0
      let started = 0
      let finished = 0

      const run = (runOptions: RunOptions): Effect.Effect<Finished, JournalError> =>
        Effect.gen(function* () {
          const counts = { made: 0, skipped: 0, failed: 0, spentUsd: 0 }
          const report = (outcome: Outcome) => {
            if (outcome._tag === "Done") counts.made += 1
            else if (outcome._tag === "Skipped") counts.skipped += 1
            else counts.failed += 1
            counts.spentUsd += costOf(outcome)
            emit({ _tag: "Outcome", outcome })
          }
          // Resume: what is already on disk, by each request's identity (what determines its image).
          const todo: Array<Planned> = []
          for (const item of realtime) {
            const found = yield* runner.lookup(item)
            if (found._tag === "Current") {
              const skipped: Outcome = { _tag: "Skipped", request: item.request, id: item.id, file: found.file }
              yield* record(skipped)
              report(skipped)
              continue
            }
            if (found._tag === "Changed")
              emit({ _tag: "Changed", id: item.id, file: found.file, placeholder: found.placeholder === true })
            todo.push(item)
          }
          toRun = todo.length
          // Batch jobs go out first, so the upstream works on them while real-time requests are made.
          yield* submitBatch

          // A request starts only with a permit, and a permit comes back only once its outcome is journaled
          // and reported; after `stop` no permit is used again, so no new request starts.
          const permits = yield* Semaphore.make(runOptions.concurrency)
          let stopping = false
          // A spend cap: each request reserves the most its plan could cost before it starts and settles what
          // it cost when it ends; the first that could pass the cap (nothing in flight to free room) stops the run.
          const cap = runOptions.maxSpendUsd === undefined ? undefined : Budget.runCap(runOptions.maxSpendUsd)
          const admit = (item: Planned): Effect.Effect<Planned | undefined> => {
            if (cap === undefined) return Effect.succeed(item)
            const usd = "_tag" in item.plan ? 0 : Budget.reservationOf(item.plan, runner.channels)
            return Effect.map(cap.admit([item.id], usd), (admitted) => (admitted ? item : undefined))
          }
          const source = Stream.fromIterable(todo).pipe(
            Stream.rechunk(1),
            Stream.mapEffect((item) => Semaphore.take(permits, 1).pipe(Effect.as(item))),
            Stream.takeWhile(() => !stopping),
            Stream.mapEffect(admit),
            Stream.takeWhile((item) => item !== undefined),
            Stream.map((item) => item!),
            Stream.tap((item) =>
              Effect.sync(() => {
                started += 1
              }).pipe(
                Effect.andThen(
                  journal === undefined
                    ? Effect.void
                    : Effect.orDie(journal.updateRequest(keyOf(item.request), { state: "running" })),
                ),
              ),
            ),
          )
          const work = runner
            .runAll(source, {
              concurrency: runOptions.concurrency,
              // checked above, once per request
              resume: false,
            })
            .pipe(
              Stream.mapEffect(
                (outcome) =>
                  Effect.orDie(record(outcome)).pipe(
                    Effect.andThen(
                      Effect.sync(() => {
                        finished += 1
                        cap?.settle(
                          outcome._tag === "Skipped" ? outcome.id : Plan.requestId(outcome.request),
                          costOf(outcome),
                        )
                        report(outcome)
                      }),
                    ),
                    Effect.ensuring(Semaphore.release(permits, 1)),
                  ),
                { concurrency: runOptions.concurrency, unordered: true },
              ),
              Stream.runDrain,
            )
          const drainMillis = runOptions.drainMillis ?? Number.POSITIVE_INFINITY
          const drain =
            runOptions.stop === undefined
              ? Effect.never
              : runOptions.stop.pipe(
                  Effect.tap(() =>
                    Effect.sync(() => {
                      stopping = true
                      emit({ _tag: "Stopping", inFlight: started - finished, drainMillis })
                    }),
                  ),
                  Effect.andThen(Number.isFinite(drainMillis) ? Effect.sleep(drainMillis) : Effect.never),
                  Effect.tap(() =>
                    Effect.sync(() => emit({ _tag: "Abandoned", count: started - finished, drainMillis })),
                  ),
                )
          yield* Effect.raceFirst(work, drain)
          const refused = cap?.refused()
          return {
            toRun,
            started,
            finished,
            ...counts,
            stopped: stopping,
            ...(refused === undefined
              ? {}
              : { capped: { limitUsd: refused.status.limitUsd, requestedUsd: refused.requestedUsd } }),
          }
        })

      const waitBatch: Prepared["waitBatch"] = (poll) =>
        work === undefined || batchKeys.length === 0 ? Effect.succeed(noTotals) : work.wait(batchKeys, poll)

      return {
        planned,
        realtime,
        batch,
        location: journal?.location,
        run,
        progress: () => ({ toRun, started, finished }),
        waitBatch,
        totals: journal === undefined ? Effect.succeed(noTotals) : journal.totals(keys),
      }
    })

  return { prepare }
}

/** Why a request planned for this run cannot be made, if it cannot. @category accessors */
export const invalidOf = (item: Planned): InvalidRequest | undefined => ("_tag" in item.plan ? item.plan : undefined)
