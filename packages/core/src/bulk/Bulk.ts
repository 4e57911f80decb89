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
 * - **Several workers** ({@link Options.claims}): processes sharing one input and one journal (Postgres, or
 *   a SQLite file on one machine) split the work. Each request is claimed in the journal before it starts
 *   and made by the worker that holds the claim; a claim is a lease the worker renews while it lives, so
 *   the requests of a worker that died are claimed again once its lease expires. A worker ends when every
 *   request of the input is done or failed (waiting while others still hold some); the totals come from
 *   the journal, so they cover every worker.
 *
 * @since 0.4.0
 */
import type { InvalidRequest } from "@peel/contract/Errors"
import type { ImageRequest } from "@peel/contract/Request"
import { Context, Effect, Layer, Option, Schedule, Schema, Semaphore, Stream } from "effect"
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
  /**
   * Share the input with other workers through the journal: claim each request before making it. `worker`
   * names this process (unique among the workers); a claim lasts `leaseMillis` (30 s by default) and is
   * renewed every third of it while this process lives; a worker whose remaining requests are all held by
   * others looks again every `pollMillis` (1 s). Needs `journal`.
   */
  readonly claims?:
    | { readonly worker: string; readonly leaseMillis?: number | undefined; readonly pollMillis?: number | undefined }
    | undefined
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

/** The default claim lease of a worker sharing an input: its requests are claimed again this long after it dies. */
export const defaultLeaseMillis = 30_000

const keyName = (key: RequestKey) => `${key.id}\u0000${key.hash}`

/** States a request of this run does not leave again. */
const ended = (record: RequestRecord, startedAt: number) =>
  record.state === "done" ||
  record.state === "cancelled" ||
  record.state === "queued" ||
  (record.state === "failed" && record.updatedAt >= startedAt)

/** @category constructors */
export const make = (options: Options): BulkShape => {
  const { runner, output, journal } = options
  const claims = journal === undefined ? undefined : options.claims
  const leaseMillis = claims?.leaseMillis ?? defaultLeaseMillis
  const startedAt = Date.now()

  /**
   * The requests this worker makes, claimed one at a time as permits free up: a request that cannot be
   * planned first (nothing to claim: it fails at once, in every worker, without a call), then each open
   * request in input order that the journal lets this worker claim. When every request left is held by
   * another worker, look again every `pollMillis`; end when none is left (or on `stop`, or when `admit`
   * refuses: the claim is given back).
   */
  const claimed = (
    todo: ReadonlyArray<Planned>,
    journal: WorkJournalShape,
    worker: string,
    permits: Semaphore.Semaphore,
    admit: (item: Planned) => Effect.Effect<Planned | undefined>,
    stopping: () => boolean,
    /** Whether a claimed request's image is already in the output folder (then recorded, not made). */
    onDisk: (item: Planned) => Effect.Effect<boolean, JournalError>,
  ): Stream.Stream<Planned> => {
    const unplanned = todo.filter((item) => "_tag" in item.plan)
    const byKey = new Map<string, Planned>()
    let open: Array<RequestKey> = []
    for (const item of todo) {
      if ("_tag" in item.plan) continue
      const key = BatchWork.keyOf(item.request, item.plan)
      byKey.set(keyName(key), item)
      open.push(key)
    }
    const held = new Set<string>()
    const forget = (names: ReadonlySet<string>) => {
      open = open.filter((key) => !names.has(keyName(key)))
    }
    const pollMillis = claims?.pollMillis ?? 1000
    const next: Effect.Effect<Planned | undefined, JournalError> = Effect.gen(function* () {
      const first = unplanned.shift()
      if (first !== undefined) return first
      while (open.length > 0) {
        if (stopping()) return undefined
        const window = open.filter((key) => !held.has(keyName(key))).slice(0, 32)
        if (window.length === 0) {
          // every request left is held by another worker: look again later (one that dies loses its claims)
          yield* Effect.sleep(pollMillis)
          held.clear()
          const records = yield* journal.requests({ keys: open })
          forget(new Set(records.filter((record) => ended(record, startedAt)).map(keyName)))
          continue
        }
        const [got] = yield* journal.claim({ worker, keys: window, limit: 1, leaseMillis, failedBefore: startedAt })
        if (got !== undefined) {
          forget(new Set([keyName(got)]))
          const item = byKey.get(keyName(got))
          // a worker that died after saving its image and before journaling it: the image is done
          if (item !== undefined && (yield* onDisk(item))) continue
          return item
        }
        // nothing in the window could be claimed: forget what ended, the rest is held by others
        const records = yield* journal.requests({ keys: window })
        const over = new Set<string>()
        for (const record of records) (ended(record, startedAt) ? over : held).add(keyName(record))
        forget(over)
      }
      return undefined
    })
    return Stream.unfold(undefined, () =>
      Effect.gen(function* () {
        yield* Semaphore.take(permits, 1)
        const item = stopping() ? undefined : yield* Effect.orDie(next)
        const admitted = item === undefined ? undefined : yield* admit(item)
        if (admitted === undefined) {
          if (item !== undefined && !("_tag" in item.plan))
            yield* Effect.orDie(
              journal.updateRequest(BatchWork.keyOf(item.request, item.plan), { onlyIf: "running", state: "pending" }),
            )
          yield* Semaphore.release(permits, 1)
          return undefined
        }
        return [admitted, undefined] as const
      }),
    )
  }

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
        // (Sharing the input with other workers: only those whose claim expired, or that nobody claimed.)
        const inFlight = (yield* journal.requests({
          keys: fresh.map((entry) => entry.key),
          states: ["running"],
        })).filter(
          (record) =>
            output.lookup(record.id, record.hash)._tag !== "Current" &&
            (claims === undefined || record.leaseUntil === undefined || record.leaseUntil <= Date.now()),
        )
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
          const markRunning = (item: Planned) =>
            Effect.sync(() => {
              started += 1
            }).pipe(
              Effect.andThen(
                journal === undefined || claims !== undefined
                  ? Effect.void
                  : Effect.orDie(journal.updateRequest(keyOf(item.request), { state: "running" })),
              ),
            )
          const source =
            claims === undefined || journal === undefined
              ? Stream.fromIterable(todo).pipe(
                  Stream.rechunk(1),
                  Stream.mapEffect((item) => Semaphore.take(permits, 1).pipe(Effect.as(item))),
                  Stream.takeWhile(() => !stopping),
                  Stream.mapEffect(admit),
                  Stream.takeWhile((item) => item !== undefined),
                  Stream.map((item) => item!),
                  Stream.tap(markRunning),
                )
              : claimed(
                  todo,
                  journal,
                  claims.worker,
                  permits,
                  admit,
                  () => stopping,
                  (item) =>
                    Effect.flatMap(runner.lookup(item), (found) => {
                      if (found._tag !== "Current") return Effect.succeed(false)
                      const skipped: Outcome = { _tag: "Skipped", request: item.request, id: item.id, file: found.file }
                      return Effect.as(
                        Effect.tap(record(skipped), () => Effect.sync(() => report(skipped))),
                        true,
                      )
                    }),
                ).pipe(Stream.tap(markRunning))
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
          // A worker sharing the input renews its claims while it lives (a failed renewal is tried again
          // at the next turn; the journal itself pauses while its server is away).
          const renewing =
            claims === undefined || journal === undefined
              ? Effect.never
              : Effect.ignore(journal.renew(claims.worker, leaseMillis)).pipe(
                  Effect.repeat(Schedule.spaced(Math.max(1, Math.floor(leaseMillis / 3)))),
                  Effect.andThen(Effect.never),
                )
          yield* Effect.raceFirst(Effect.raceFirst(work, renewing), drain)
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
