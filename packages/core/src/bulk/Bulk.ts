/**
 * Bulk runs: many requests through one runner, resumable and safe to kill. One service that `peel run`,
 * the embedding API and the gateway share; a caller only chooses the requests and prints events.
 *
 * - **Planned once**: each request is planned once for the run ({@link Runner.RunnerShape.prepare}: `n`
 *   images are ID-1 … ID-n, reference images read or downloaded once) and that plan is what routes it,
 *   admits it under a spend cap, journals it and runs it.
 * - **Flat memory** ({@link BulkShape.start}): the input is read a chunk at a time as permits free up;
 *   each request is dropped once its outcome is journaled and reported. What stays for the whole run is
 *   counts and each request's journal key (for the totals); batch work stays until it is sent.
 * - **Batch routing**: a request whose plan is batch work goes to a batch job ({@link BatchWork}); the rest
 *   are made in real time. Batch work that no channel takes in a batch is made in real time (one
 *   {@link Event} says how many, once the input is read). A streamed input's batch jobs go out once the
 *   whole input is read; a prepared one's before the first real-time request.
 * - **Journal**: with a work journal, every real-time request is journaled before it starts (`running`)
 *   and when it ends (state, file, cost), so the totals cover every run of the same input.
 * - **Crash recovery**: a request an earlier run had in flight when it died (`running`, no image on disk)
 *   may have been billed: an event says so (one per chunk of the input that holds such requests), with
 *   what it could have cost, and it is made again. One whose image was saved before the process died is
 *   completed at its expected price.
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
import { isPlanned, type Outcome, type Planned, type RunnerShape } from "../runner/Runner.ts"
import * as Budget from "../spend/Budget.ts"
import * as BatchWork from "../work/BatchWork.ts"
import {
  JournalError,
  type RequestKey,
  type RequestRecord,
  type Totals,
  type WorkJournalShape,
} from "../work/WorkJournal.ts"

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

/** Where a bulk run stands. @category models */
export interface Progress {
  /** Requests planned so far (n images of one request count n). */
  readonly planned: number
  /** Of those, the ones to make in real time (not skipped: their image is not on disk yet). */
  readonly toRun: number
  readonly started: number
  readonly finished: number
  /** Of those planned, the ones that are batch work. */
  readonly batch: number
  /** Whether the whole input has been read (and planned). */
  readonly complete: boolean
}

/**
 * A bulk run ready to go. {@link BulkShape.start} reads its input as it runs; {@link BulkShape.prepare}
 * has read and planned all of it already. It runs once.
 *
 * @category models
 */
export interface Started {
  /** Where the journal lives, when there is one. */
  readonly location: string | undefined
  /** Make the real-time requests and send the batch work (journaled first). */
  readonly run: (options: RunOptions) => Effect.Effect<Finished, JournalError>
  /** Where the run stands (for a progress bar, and a summary when the run is interrupted). */
  readonly progress: () => Progress
  /** Poll with backoff and collect until every batch request is done or failed. */
  readonly waitBatch: (poll: { readonly every: number; readonly max: number }) => Effect.Effect<Totals, JournalError>
  /** Totals over every request of this input read so far, in the journal, across runs (zero without a journal). */
  readonly totals: Effect.Effect<Totals, JournalError>
}

/** A bulk run, every request planned up front, ready to go. @category models */
export interface Prepared extends Started {
  /** Every request, planned (n images: one each), in input order. */
  readonly planned: ReadonlyArray<Planned>
  /** The ones made in real time. */
  readonly realtime: ReadonlyArray<Planned>
  /** The ones sent to batch jobs. */
  readonly batch: ReadonlyArray<Planned>
}

/** @category models */
export interface BulkShape {
  /**
   * Plan every request once, up front, and keep the plans (`planned`): for callers that look at them
   * before running (a single `--prompt`, an embedding program). When run, it journals and routes them,
   * reports what earlier runs left in flight, sends the batch work and makes the rest.
   */
  readonly prepare: (
    requests: ReadonlyArray<ImageRequest>,
    options?: { readonly onEvent?: ((event: Event) => void) | undefined },
  ) => Effect.Effect<Prepared, JournalError>
  /**
   * A bulk run that reads `requests` as it goes (any iterable: an array, a generator over a file): each
   * is planned once, journaled and made when a permit frees up, and dropped when its outcome is
   * journaled and reported, so memory stays flat however long the input. Batch work is sent once the
   * whole input is read. Workers sharing the input ({@link Options.claims}) read all of it first.
   */
  readonly start: (
    requests: Iterable<ImageRequest>,
    options?: { readonly onEvent?: ((event: Event) => void) | undefined },
  ) => Effect.Effect<Started>
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

/**
 * How many requests of a streamed input are read, planned, journaled (in one write) and checked against
 * the output folder at a time: what a run holds beyond the requests in flight.
 */
const chunkSize = 64

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

  /**
   * One bulk run over `source`. The input is read `chunkSize` requests at a time, as the run needs them:
   * each chunk is planned (once), routed, journaled, checked for images an earlier run left in flight and
   * against the output folder; its real-time requests wait in `ready` until a permit frees up. What is
   * kept for the whole run is O(1) per request (counts) plus its journal key (for the totals) and the
   * batch work (it goes into jobs together, at the end of the input). `eager` reads the whole input before
   * anything is made, as {@link BulkShape.prepare} promises (and as workers sharing an input need: a claim
   * window ranges over every open request).
   */
  const session = (source: Iterable<ImageRequest | Planned>, emit: (event: Event) => void, eager: boolean): Started => {
    const input = source[Symbol.iterator]()
    let inputDone = false
    /** Every request's journal key, in input order: the totals cover them (batch work included). */
    const keys: Array<RequestKey> = []
    /** A request's journal key (its identity comes from its plan, made once), while its outcome is on its way. */
    const keyed = new WeakMap<ImageRequest, RequestKey>()
    const keyOf = (request: ImageRequest): RequestKey => keyed.get(request) ?? BatchWork.keyOf(request)
    /** Batch work, sent in jobs once the whole input is read. */
    const batch: Array<Planned> = []
    /** Real-time requests planned, journaled and not on disk, in input order, waiting for a permit. */
    const ready: Array<Planned> = []
    let planned = 0
    let unbatched = 0
    let toRun = 0
    let started = 0
    let finished = 0
    const counts = { made: 0, skipped: 0, failed: 0, spentUsd: 0 }
    const report = (outcome: Outcome) => {
      if (outcome._tag === "Done") counts.made += 1
      else if (outcome._tag === "Skipped") counts.skipped += 1
      else counts.failed += 1
      counts.spentUsd += costOf(outcome)
      emit({ _tag: "Outcome", outcome })
    }

    /** Journal a request's outcome: the last use of its key here. */
    const record = (outcome: Outcome): Effect.Effect<void, JournalError> => {
      const key = keyOf(outcome.request)
      keyed.delete(outcome.request)
      if (journal === undefined) return Effect.void
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

    /**
     * Read, plan, route and journal the next chunk of the input; report what is already on disk and queue
     * the rest in `ready`. False once the input is read to the end.
     */
    const nextChunk: Effect.Effect<boolean, JournalError> = Effect.gen(function* () {
      const chunk: Array<ImageRequest | Planned> = []
      while (!inputDone && chunk.length < chunkSize) {
        const step = input.next()
        if (step.done === true) inputDone = true
        else chunk.push(step.value)
      }
      if (chunk.length === 0) return false
      const items = (yield* Effect.forEach(
        chunk,
        (item): Effect.Effect<ReadonlyArray<Planned>> =>
          isPlanned(item) ? Effect.succeed([item]) : runner.prepare(item),
        { concurrency: 8 },
      )).flat()
      planned += items.length
      const realtime: Array<Planned> = []
      const fresh: Array<{ key: RequestKey; request: ImageRequest; plan: unknown }> = []
      for (const item of items) {
        const plan = "_tag" in item.plan ? undefined : item.plan
        // Each request's journal key holds its identity, which comes from its plan: made once, here.
        const key = BatchWork.keyOf(item.request, plan)
        keys.push(key)
        keyed.set(item.request, key)
        if (plan?.urgency === "batch" && journal !== undefined) {
          batch.push(item)
          continue
        }
        realtime.push(item)
        if (plan === undefined) continue
        if (plan.adjustments.some((adjustment) => adjustment.field === "urgency")) unbatched += 1
        fresh.push({ key, request: item.request, plan: Plan.toJson(plan, runner.channels) })
      }
      if (journal !== undefined && fresh.length > 0) {
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
      // Resume: what is already on disk, by each request's identity (what determines its image).
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
        ready.push(item)
        toRun += 1
      }
      return true
    })

    /** The next real-time request to make, reading on in the input as needed; undefined at its end. */
    const nextReady: Effect.Effect<Planned | undefined, JournalError> = Effect.gen(function* () {
      while (ready.length === 0) if (!(yield* nextChunk)) return undefined
      return ready.shift()
    })

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
    let batchKeys: ReadonlyArray<RequestKey> = []
    /** The whole input is read: say what could not be batched, and send the batch work. */
    const inputRead = Effect.gen(function* () {
      if (unbatched > 0) emit({ _tag: "Unbatched", count: unbatched })
      if (work === undefined || batch.length === 0) return
      const enqueued = yield* work.enqueue(batch)
      batchKeys = enqueued.keys
      if (enqueued.done.length > 0 || enqueued.inJob.length > 0)
        emit({ _tag: "BatchKnown", done: enqueued.done.length, inJob: enqueued.inJob.length })
      yield* work.recover()
      yield* work.submit(enqueued.keys)
    })

    let ran = false
    const run = (runOptions: RunOptions): Effect.Effect<Finished, JournalError> =>
      Effect.gen(function* () {
        if (ran) return yield* new JournalError({ message: "a bulk run runs once: its input is read as it goes" })
        ran = true
        if (eager || claims !== undefined) {
          // The whole input first: batch jobs go out before any real-time request, so the upstream works on
          // them meanwhile.
          while (yield* nextChunk) {}
          yield* inputRead
        }

        // A request starts only with a permit, and a permit comes back only once its outcome is journaled
        // and reported; after `stop` no permit is used again, so no new request starts.
        const permits = yield* Semaphore.make(runOptions.concurrency)
        let stopping = false
        /** A journal failure while reading on in the input: the run ends, and fails with it. */
        let failure: JournalError | undefined
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
            ? Stream.unfold(undefined, () =>
                Effect.gen(function* () {
                  yield* Semaphore.take(permits, 1)
                  const item = stopping
                    ? undefined
                    : yield* Effect.catch(nextReady, (error) =>
                        Effect.sync(() => {
                          failure = error
                          return undefined
                        }),
                      )
                  const admitted = item === undefined ? undefined : yield* admit(item)
                  if (admitted === undefined) {
                    yield* Semaphore.release(permits, 1)
                    return undefined
                  }
                  return [admitted, undefined] as const
                }),
              ).pipe(Stream.tap(markRunning))
            : claimed(
                ready.splice(0),
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
        const making = runner
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
            // Streaming, and not stopped: read the rest of the input (a spend cap stopped the real-time part:
            // what is left is journaled, not made) and send its batch work.
            Effect.andThen(
              Effect.suspend(() =>
                eager || claims !== undefined || stopping || failure !== undefined
                  ? Effect.void
                  : Effect.gen(function* () {
                      while (yield* nextChunk) ready.length = 0
                      yield* inputRead
                    }).pipe(
                      Effect.catch((error) =>
                        Effect.sync(() => {
                          failure = error
                        }),
                      ),
                    ),
              ),
            ),
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
        yield* Effect.raceFirst(Effect.raceFirst(making, renewing), drain)
        if (failure !== undefined) return yield* failure
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

    return {
      location: journal?.location,
      run,
      progress: () => ({ planned, toRun, started, finished, batch: batch.length, complete: inputDone }),
      waitBatch: (poll) =>
        work === undefined || batchKeys.length === 0 ? Effect.succeed(noTotals) : work.wait(batchKeys, poll),
      totals: Effect.suspend(() => (journal === undefined ? Effect.succeed(noTotals) : journal.totals(keys))),
    }
  }

  const prepare: BulkShape["prepare"] = (requests, prepareOptions = {}) =>
    Effect.gen(function* () {
      const planned = (yield* Effect.forEach(requests, runner.prepare, { concurrency: 8 })).flat()
      const isBatch = (item: Planned) =>
        journal !== undefined && !("_tag" in item.plan) && item.plan.urgency === "batch"
      return {
        ...session(planned, (event) => prepareOptions.onEvent?.(event), true),
        planned,
        realtime: planned.filter((item) => !isBatch(item)),
        batch: planned.filter(isBatch),
      }
    })

  const start: BulkShape["start"] = (requests, startOptions = {}) =>
    Effect.sync(() => session(requests, (event) => startOptions.onEvent?.(event), false))

  return { prepare, start }
}

/** Why a request planned for this run cannot be made, if it cannot. @category accessors */
export const invalidOf = (item: Planned): InvalidRequest | undefined => ("_tag" in item.plan ? item.plan : undefined)
