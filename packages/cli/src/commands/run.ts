/**
 * `peel run FILE --prompt TEXT ...` (one request) and `peel run FILE --input REQUESTS.jsonl` (bulk, bounded
 * concurrency, resumable). Nothing is spent before everything that can be checked was checked: every
 * JSONL line (decoded with the ImageRequest Schema; ids that differ only in case are duplicates), the
 * pipeline, `--concurrency` (1 to {@link maxConcurrency}) and the output folder (created, proven writable);
 * any problem exits 2.
 *
 * Resume: a request whose image is already in `--out`, made from the same request, is skipped; one whose
 * request changed since (same id, different prompt, size, ...) is made again, and stderr says so.
 *
 * Stopping: the first SIGINT or SIGTERM stops starting requests, lets the ones in flight finish for up to
 * `--drain-timeout` ({@link defaultDrainTimeout} by default; their images are saved), prints the summary
 * and exits 130 or 143. A second signal aborts at once.
 *
 * @since 0.1.0
 */
import { Bulk, Money, Plan, Request, Requests, Runner, Session, Units, WorkJournal } from "@peel/core"
import { Observe, Progress } from "@peel/observability"
import { Deferred, Effect, Result } from "effect"
import { costOf, ExitCode, jsonOf, printOpenError, rowOf, streamedTable, table } from "../output.ts"
import { loadOptionsWith } from "../plugins.ts"
import * as Signals from "../signals.ts"
import * as Batch from "./batch.ts"

/** The largest `--concurrency`: more requests in flight than any upstream quota allows is only a mistake. */
export const maxConcurrency = 256

/** How long in-flight requests may take to finish after the first SIGINT/SIGTERM before they are abandoned (`--drain-timeout`). */
export const defaultDrainTimeout = "30s"

export interface RunOptions {
  readonly file: string
  readonly prompt?: string
  readonly input?: string
  readonly use?: string
  readonly priority?: string
  readonly urgency?: string
  readonly size?: string
  readonly aspectRatio?: string
  readonly model?: string
  readonly id?: string
  readonly out: string
  readonly json: boolean
  readonly concurrency: number
  /** A duration (`30s`); {@link defaultDrainTimeout} when unset. */
  readonly drainTimeout?: string
  /** The work journal's folder (bulk runs and batch work); `./.peel` when unset. */
  readonly state?: string
  /**
   * `--postgres URL`: the work journal and the spend ledger in Postgres (wins over the pipeline's
   * `state: { postgres }`). Workers given the same URL and input split the work.
   */
  readonly postgres?: string
  /** `--lease`: how long a worker's claim on a request lasts unless renewed (30s when unset). */
  readonly lease?: string
  /** Shortest pause between polls of batch jobs (`5s` when unset). */
  readonly pollEvery?: string
  /** Append the call log here (`--call-log`): a JSON line per attempt, per request, per alert. */
  readonly callLog?: string
  /** Print each request's plan as one JSON line and stop: no upstream call, no output folder (`--dry-run`). */
  readonly dryRun?: boolean
  /** Run-level cap in USD (`--max-spend`): start no request that could pass it. */
  readonly maxSpend?: string
  /** Reference images (`--image`, repeatable): paths, URLs or data: URIs. */
  readonly images?: ReadonlyArray<string>
  /** `--n`: how many images (ID-1 ... ID-n). */
  readonly n?: number
  readonly seed?: number
  readonly imageOnly?: boolean
  /** `--redis URL`: the state services in this Redis (wins over the pipeline's `state.redis`). */
  readonly redis?: string
}

const singleRequest = (options: RunOptions): Result.Result<Request.ImageRequest, string> =>
  Result.mapError(
    Request.decodeRequest({
      prompt: options.prompt,
      ...(options.id === undefined ? {} : { id: options.id }),
      ...(options.use === undefined ? {} : { use: options.use }),
      ...(options.priority === undefined ? {} : { priority: options.priority }),
      ...(options.urgency === undefined ? {} : { urgency: options.urgency }),
      ...(options.size === undefined ? {} : { size: options.size }),
      ...(options.aspectRatio === undefined ? {} : { aspectRatio: options.aspectRatio }),
      ...(options.model === undefined ? {} : { model: options.model }),
      ...(options.images === undefined ? {} : { images: options.images }),
      ...(options.n === undefined ? {} : { n: options.n }),
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      ...(options.imageOnly === true ? { imageOnly: true } : {}),
    }),
    (message) => `peel run: invalid request: ${message}`,
  )

const money = Money.format

/**
 * `--dry-run`: build the channels (no output folder), plan every request (`n` images as ID-1 … ID-n) and
 * print each plan as one JSON line (`Plan.toJson`): model, size, aspect ratio, candidates with their
 * expected price, refused channels, adjustments. Nobody is called. A request that cannot be planned is
 * one line on stderr and exit 1.
 */
const dryRun = (
  file: string,
  requests: ReadonlyArray<Request.ImageRequest>,
  imageFlags: boolean,
  redis: string | undefined,
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const opened = yield* Effect.result(
        Session.open(file, {
          load: loadOptionsWith({ redis }),
          onWarning: (line) => process.stderr.write(`${line}\n`),
        }),
      )
      if (Result.isFailure(opened)) {
        printOpenError("peel run", file, opened.failure)
        return ExitCode.usage
      }
      const runner = opened.success.runner
      const planned = (yield* Effect.forEach(requests, runner.prepare)).flat()
      if (imageFlags) {
        const bad = planned.find((item) => item.badImages)
        if (bad !== undefined) return badImage(bad)
      }
      let failed = false
      for (const item of planned) {
        const plan = item.plan
        if ("_tag" in plan) {
          failed = true
          process.stderr.write(`${plan.message}\n`)
        } else process.stdout.write(`${JSON.stringify(Plan.toJson(plan, runner.channels))}\n`)
      }
      return failed ? ExitCode.failed : ExitCode.ok
    }),
  )

/** A missing or unreadable `--image`: a usage error, one line, before anything is spent. */
const badImage = (item: Runner.Planned) => {
  process.stderr.write(`peel run: --image: ${Bulk.invalidOf(item)?.message}\n`)
  return ExitCode.usage
}

export const run = Effect.fn("run")(function* (options: RunOptions) {
  if ((options.prompt === undefined) === (options.input === undefined)) {
    process.stderr.write("peel run: give exactly one of --prompt TEXT or --input REQUESTS.jsonl\n")
    return ExitCode.usage
  }
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1 || options.concurrency > maxConcurrency) {
    process.stderr.write(
      `peel run: --concurrency must be a whole number from 1 to ${maxConcurrency} (got ${options.concurrency})\n`,
    )
    return ExitCode.usage
  }
  const drainTimeoutMs = Units.parseMillis(options.drainTimeout ?? defaultDrainTimeout)
  if (drainTimeoutMs === undefined) {
    process.stderr.write(
      `peel run: --drain-timeout must be a duration such as 500ms, 30s or 2m (got "${options.drainTimeout}")\n`,
    )
    return ExitCode.usage
  }
  if (
    options.input !== undefined &&
    (options.images !== undefined ||
      options.n !== undefined ||
      options.seed !== undefined ||
      options.imageOnly === true)
  ) {
    process.stderr.write(
      "peel run: --image, --n, --seed and --image-only go with --prompt; with --input, put them in each JSONL line\n",
    )
    return ExitCode.usage
  }
  const leaseMillis = Units.parseMillis(options.lease ?? "30s")
  if (leaseMillis === undefined || leaseMillis < 1000) {
    process.stderr.write(
      `peel run: --lease must be a duration of 1s or more, such as 10s or 1m (got "${options.lease}")\n`,
    )
    return ExitCode.usage
  }
  const maxSpend = options.maxSpend === undefined ? undefined : Number(options.maxSpend)
  if (maxSpend !== undefined && !(Number.isFinite(maxSpend) && maxSpend > 0)) {
    process.stderr.write(
      `peel run: --max-spend must be a positive amount in USD, such as 5 or 0.50 (got "${options.maxSpend}")\n`,
    )
    return ExitCode.usage
  }
  let requests: ReadonlyArray<Request.ImageRequest>
  if (options.input !== undefined) {
    const read = yield* Effect.result(Requests.read(options.input))
    if (Result.isFailure(read)) {
      for (const problem of read.failure.problems) process.stderr.write(`${problem.format()}\n`)
      return ExitCode.usage
    }
    requests = read.success
  } else {
    const request = singleRequest(options)
    if (Result.isFailure(request)) {
      process.stderr.write(`${request.failure}\n`)
      return ExitCode.usage
    }
    requests = [request.success]
  }

  if (options.dryRun === true) return yield* dryRun(options.file, requests, options.input === undefined, options.redis)

  return yield* Effect.scoped(
    Effect.gen(function* () {
      // The output folder is proven usable, and the call log opened, before anything is paid for; the call
      // log, metrics, alerts and OTLP export hear every attempt. The runner writes each image through the
      // output folder the moment it is checked (atomically, with its record).
      let observing: Observe.Observed | undefined
      const opened = yield* Effect.result(
        Session.open(options.file, {
          out: options.out,
          load: loadOptionsWith(options),
          onWarning: (line) => process.stderr.write(`${line}\n`),
          observers: Effect.map(
            Observe.make({ callLog: options.callLog, pipeline: options.file, requests: requests.length }),
            (made) => {
              observing = made
              return made.observers
            },
          ),
        }),
      )
      if (Result.isFailure(opened)) {
        printOpenError("peel run", options.file, opened.failure)
        return ExitCode.usage
      }
      const observed = observing!
      const runner = opened.success.runner
      const out = opened.success.output!
      const bulk = options.input !== undefined
      // n images of one --prompt are reported like a bulk run: one row each
      const several = bulk || requests.some((request) => (request.n ?? 1) > 1)
      const pollEvery = Units.parseMillis(options.pollEvery ?? "5s") ?? 5000
      // The work journal (bulk runs and batch work): resume and totals across runs, batch jobs.
      // With Postgres (--postgres, or the pipeline's state: block) it is shared: workers split the input.
      const stateDir = options.state ?? Batch.defaultStateDir
      const postgres = opened.success.pipeline.state?.postgres
      const journaling =
        bulk || requests.some((request) => request.urgency === "batch")
          ? yield* Effect.result(
              postgres === undefined
                ? WorkJournal.make(WorkJournal.fileIn(stateDir))
                : WorkJournal.makePostgres(postgres, Batch.outageWarnings("peel run")),
            )
          : undefined
      if (journaling !== undefined && Result.isFailure(journaling)) {
        process.stderr.write(`peel run: ${journaling.failure.message}\n`)
        return ExitCode.usage
      }
      const journal = journaling?.success

      // Everything printed comes from the bulk run's events; outcomes once the table and progress exist.
      let report: (outcome: Runner.Outcome) => void = () => {}
      let stopping: Signals.Signal | undefined
      const batchReporter = Batch.makeReporter(options.json)
      const onEvent = (event: Bulk.Event) => {
        switch (event._tag) {
          case "Outcome":
            return report(event.outcome)
          case "Changed":
            return process.stderr.write(
              event.placeholder
                ? `${event.id}: ${event.file} is a placeholder; trying again for the real image\n`
                : `${event.id}: the request changed since ${event.file} was made; making it again\n`,
            )
          case "Unbatched":
            return process.stderr.write(
              `warning: ${event.count} request(s) ask for urgency: batch, but no channel of ${options.file} takes batch work: made in real time at the standard price\n`,
            )
          case "InFlightBefore":
            return process.stderr.write(
              `warning: ${event.ids.length} request(s) were in flight when an earlier run stopped (${event.ids.slice(0, 5).join(", ")}${event.ids.length > 5 ? ", ..." : ""}): the upstream may have billed them (up to ${money(event.upToUsd)}, not in the totals); they are made again\n`,
            )
          case "BatchKnown":
            if (event.done > 0) process.stderr.write(`${event.done} batch request(s) already done: not sent again\n`)
            if (event.inJob > 0)
              process.stderr.write(`${event.inJob} batch request(s) already in a job: not sent again\n`)
            return
          case "Batch":
            return batchReporter.onEvent(event.event)
          case "Stopping":
            progress.clear()
            return process.stderr.write(
              `peel: ${stopping}: starting no more requests; waiting up to ${event.drainMillis / 1000}s for ${event.inFlight} in flight (${stopping} again aborts)\n`,
            )
          case "Abandoned":
            return process.stderr.write(
              `peel: ${event.count} request(s) still in flight after ${event.drainMillis / 1000}s: abandoned\n`,
            )
        }
      }
      // Each request is planned once (reference images read once); that plan routes, admits and runs it. A
      // bulk run reads its requests as it goes and drops each once it is reported: memory stays flat.
      const bulkRun = Bulk.make({
        runner,
        output: out,
        pipelineFile: options.file,
        journal,
        claims: postgres === undefined ? undefined : { worker: Batch.workerName(), leaseMillis },
      })
      let prepared: Bulk.Started
      if (bulk) prepared = yield* bulkRun.start(requests, { onEvent })
      else {
        const preparing = yield* Effect.result(bulkRun.prepare(requests, { onEvent }))
        if (Result.isFailure(preparing)) {
          process.stderr.write(`peel run: ${preparing.failure.message}\n`)
          return ExitCode.usage
        }
        // A missing or unreadable --image is a usage error, found before anything is spent.
        const bad = preparing.success.planned.find((item) => item.badImages)
        if (bad !== undefined) return badImage(bad)
        prepared = preparing.success
      }
      // n images of a request are n rows
      const images = requests.reduce((sum, request) => sum + (request.n ?? 1), 0)
      // Live progress on a terminal, never with --json: a spinner for one request, a bar for many (the
      // real-time ones: batch work is found as the input is read).
      const progress = Progress.make<Runner.Outcome>({
        total: bulk ? () => images - prepared.progress().batch : undefined,
        enabled: process.stderr.isTTY === true && !options.json,
        costOf,
        channelOf: (outcome) => (outcome._tag === "Done" ? outcome.result.channel : undefined),
      })
      observed.add(progress.observer)
      const rows = streamedTable({
        idWidth: Math.max(
          ...requests.map((request) => Runner.requestId(request).length + ((request.n ?? 1) > 1 ? 3 : 0)),
        ),
        channelWidth: Math.max(0, ...[...runner.channels.keys()].map((name) => name.length)),
      })
      let single: Runner.Outcome | undefined
      let headerPrinted = false
      report = (outcome: Runner.Outcome) => {
        progress.update(outcome)
        if (options.json) process.stdout.write(`${JSON.stringify(jsonOf(outcome))}\n`)
        else if (!several) single = outcome
        else {
          progress.clear()
          if (!headerPrinted) process.stdout.write(`${rows.header()}\n`)
          headerPrinted = true
          process.stdout.write(`${rows.line(rowOf(outcome))}\n`)
        }
        if (outcome._tag === "Failed" && !options.json) process.stderr.write(`${outcome.failure.message}\n`)
      }

      const summary = (prefix: string | undefined): string => {
        const counts = progress.counts()
        const { planned, toRun, started, finished } = prepared.progress()
        // not started: those planned and waiting, and those not read yet
        const notStarted = toRun - started + (images - planned)
        const abandoned = started - finished
        return `${prefix === undefined ? "" : `${prefix}: `}${counts.done} made, ${counts.skipped} skipped, ${counts.failed} failed${
          prefix === undefined ? "" : `, ${notStarted} not started`
        }${abandoned > 0 ? `, ${abandoned} abandoned` : ""}; spent ${money(counts.spent)}`
      }
      const printSummary = (prefix: string | undefined) => {
        progress.finish()
        const line = summary(prefix)
        if (!options.json) {
          if (single !== undefined) process.stdout.write(`${table([rowOf(single)])}\n`)
          process.stdout.write(`${line}\n`)
        } else if (prefix !== undefined) process.stderr.write(`${line}\n`)
      }

      // The first SIGINT/SIGTERM stops starting requests; those in flight have the drain time to finish.
      const signal = yield* Signals.firstSignal
      const finished = yield* prepared
        .run({
          concurrency: options.concurrency,
          maxSpendUsd: maxSpend,
          drainMillis: drainTimeoutMs,
          stop: Deferred.await(signal).pipe(
            Effect.tap((received) =>
              Effect.sync(() => {
                stopping = received
              }),
            ),
          ),
        })
        .pipe(
          Effect.orDie,
          Effect.onInterrupt(() =>
            Effect.sync(() => printSummary(`aborted (${Signals.receivedSignal() ?? "interrupted"})`)),
          ),
        )
      const capped = finished.capped
      printSummary(
        stopping !== undefined
          ? `interrupted (${stopping})`
          : capped !== undefined
            ? `stopped by --max-spend ${money(capped.limitUsd).replace(/(\.\d\d)00$/, "$1")} (the next request could cost up to ${money(capped.requestedUsd)})`
            : undefined,
      )
      let batchFailed = 0
      const batchCount = prepared.progress().batch
      if (batchCount > 0 && stopping === undefined) {
        process.stderr.write(
          `${batchCount} batch request(s): waiting for their jobs (Ctrl-C stops waiting; peel batch collect --state ${stateDir} picks them up later)\n`,
        )
        const batchTotals = yield* Effect.orDie(
          prepared.waitBatch({ every: pollEvery, max: Math.max(pollEvery, 300_000) }),
        )
        batchFailed = batchTotals.failed + batchTotals.cancelled
      }
      // Totals of every run of this input, from the journal (on stderr: stdout ends with the summary), when
      // they say more than the summary: earlier runs, batch jobs, work left.
      if (journal !== undefined) {
        const totals = yield* Effect.orDie(prepared.totals)
        const counts = progress.counts()
        if (
          postgres !== undefined ||
          batchCount > 0 ||
          counts.skipped > 0 ||
          totals.done + totals.failed < totals.total
        )
          process.stderr.write(`${Batch.bulkTotalsLine(totals)}\n`)
      }
      observed.end(stopping ?? (progress.counts().failed > 0 ? "failed" : "ok"))
      if (stopping !== undefined) return Signals.exitCodeOf(stopping)
      return capped !== undefined || progress.counts().failed > 0 || batchFailed > 0 ? ExitCode.failed : ExitCode.ok
    }),
  )
})
