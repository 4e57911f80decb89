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
import { readFileSync, statSync } from "node:fs"
import { Budget, Output, Pipeline, Plan, Request, Runner, Units } from "@peel/core"
import { Observe, Progress } from "@peel/observability"
import { Deferred, Effect, Result, Semaphore, Stream } from "effect"
import { costOf, ExitCode, jsonOf, printProblems, rowOf, streamedTable, table } from "../output.ts"
import { loadOptions } from "../plugins.ts"
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
}

const codeOf = (error: unknown): string | undefined => (error as { code?: unknown } | null)?.code as string | undefined

/** The text of the --input file, or one located problem (a folder, unreadable). */
const readInput = (path: string): Result.Result<string, string> => {
  try {
    if (statSync(path).isDirectory()) return Result.fail(`${path}: is a folder, not a JSONL file`)
    return Result.succeed(readFileSync(path, "utf8"))
  } catch (error) {
    const code = codeOf(error)
    if (code === "ENOENT") return Result.fail(`${path}: file not found`)
    if (code === "EACCES" || code === "EPERM") return Result.fail(`${path}: cannot read it: permission denied`)
    return Result.fail(`${path}: cannot read it: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/**
 * Read and validate a JSONL file of ImageRequests; all problems as `FILE:LINE: message`. A UTF-8 byte
 * order mark on line 1 is accepted (editors on Windows add one).
 */
const readRequests = (path: string): Result.Result<ReadonlyArray<Request.ImageRequest>, ReadonlyArray<string>> => {
  const input = readInput(path)
  if (Result.isFailure(input)) return Result.fail([input.failure])
  const text = input.success.charCodeAt(0) === 0xfeff ? input.success.slice(1) : input.success
  const requests: Array<Request.ImageRequest> = []
  const problems: Array<string> = []
  /** Lower-cased id → the line and spelling that first used it: `CON` and `con` name one file on macOS and Windows. */
  const ids = new Map<string, { readonly line: number; readonly id: string }>()
  text.split("\n").forEach((content, index) => {
    const line = index + 1
    if (content.trim() === "") return
    const decoded = Request.decodeRequestLine(content)
    if (Result.isFailure(decoded)) {
      problems.push(`${path}:${line}: ${decoded.failure}`)
      return
    }
    const id = Runner.requestId(decoded.success)
    const earlier = ids.get(id.toLowerCase())
    if (earlier !== undefined) {
      problems.push(
        earlier.id === id
          ? `${path}:${line}: duplicate request id "${id}" (first on line ${earlier.line})`
          : `${path}:${line}: duplicate request id "${id}" (line ${earlier.line} has "${earlier.id}": ids that differ only in case name the same file on case-insensitive file systems)`,
      )
      return
    }
    ids.set(id.toLowerCase(), { line, id })
    requests.push(decoded.success)
  })
  if (problems.length > 0) return Result.fail(problems)
  if (requests.length === 0) return Result.fail([`${path}: no requests (expected one JSON ImageRequest per line)`])
  return Result.succeed(requests)
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

const money = (usd: number): string => `$${usd.toFixed(4)}`

/**
 * `--dry-run`: build the channels (no output folder), plan every request (`n` images as ID-1 … ID-n) and
 * print each plan as one JSON line (`Plan.toJson`): model, size, aspect ratio, candidates with their
 * expected price, refused channels, adjustments. Nobody is called. A request that cannot be planned is
 * one line on stderr and exit 1.
 */
const dryRun = (file: string, pipeline: Pipeline.Pipeline, requests: ReadonlyArray<Request.ImageRequest>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const built = yield* Effect.result(Runner.make(pipeline))
      if (Result.isFailure(built)) {
        const error = built.failure
        if (error._tag === "ConfigError") printProblems(error.problems)
        else process.stderr.write(`${file}: ${error.message}\n`)
        return ExitCode.usage
      }
      const runner = built.success
      for (const warning of runner.warnings) process.stderr.write(`warning: ${warning}\n`)
      let failed = false
      for (const request of requests) {
        for (const one of Request.expand(request, Runner.requestId(request))) {
          const planned = yield* Effect.result(runner.plan(one))
          if (Result.isFailure(planned)) {
            failed = true
            process.stderr.write(`${planned.failure.message}\n`)
          } else process.stdout.write(`${JSON.stringify(Plan.toJson(planned.success, runner.channels))}\n`)
        }
      }
      return failed ? ExitCode.failed : ExitCode.ok
    }),
  )

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
  const maxSpend = options.maxSpend === undefined ? undefined : Number(options.maxSpend)
  if (maxSpend !== undefined && !(Number.isFinite(maxSpend) && maxSpend > 0)) {
    process.stderr.write(
      `peel run: --max-spend must be a positive amount in USD, such as 5 or 0.50 (got "${options.maxSpend}")\n`,
    )
    return ExitCode.usage
  }
  let requests: ReadonlyArray<Request.ImageRequest>
  if (options.input !== undefined) {
    const read = readRequests(options.input)
    if (Result.isFailure(read)) {
      for (const problem of read.failure) process.stderr.write(`${problem}\n`)
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

  const loaded = yield* Effect.result(Pipeline.load(options.file, loadOptions))
  if (Result.isFailure(loaded)) {
    printProblems(loaded.failure.problems)
    return ExitCode.usage
  }
  printProblems(loaded.success.warnings)
  if (options.dryRun === true) return yield* dryRun(options.file, loaded.success, requests)

  // The output folder is proven usable before anything is paid for.
  const opened = yield* Effect.result(Output.open(options.out))
  if (Result.isFailure(opened)) {
    process.stderr.write(`peel run: ${opened.failure.message}\n`)
    return ExitCode.usage
  }
  const out = opened.success

  return yield* Effect.scoped(
    Effect.gen(function* () {
      // The call log (opened before anything is spent), metrics, alerts and OTLP export hear every attempt.
      const observing = yield* Effect.result(
        Observe.make({ callLog: options.callLog, pipeline: options.file, requests: requests.length }),
      )
      if (Result.isFailure(observing)) {
        process.stderr.write(`peel run: ${observing.failure.message}\n`)
        return ExitCode.usage
      }
      const observed = observing.success
      // The runner writes each image through `out` the moment it is checked (atomically, with its record).
      const built = yield* Effect.result(Runner.make(loaded.success, { output: out, observers: observed.observers }))
      if (Result.isFailure(built)) {
        const error = built.failure
        if (error._tag === "ConfigError") printProblems(error.problems)
        else process.stderr.write(`${options.file}: ${error.message}\n`)
        return ExitCode.usage
      }
      const runner = built.success
      for (const warning of runner.warnings) process.stderr.write(`warning: ${warning}\n`)
      const bulk = options.input !== undefined
      // n images of one --prompt are reported like a bulk run: one row each
      const several = bulk || requests.some((request) => (request.n ?? 1) > 1)
      // The work journal (bulk runs and batch work): resume and totals across runs, batch jobs. Batch
      // requests go to jobs; the rest go their own way in real time.
      const pollEvery = Units.parseMillis(options.pollEvery ?? "5s") ?? 5000
      const journaling =
        bulk || requests.some((request) => request.urgency === "batch")
          ? yield* Effect.result(
              Batch.bulkRun({
                runner,
                output: out,
                state: options.state ?? Batch.defaultStateDir,
                pipelineFile: options.file,
                requests,
                json: options.json,
              }),
            )
          : undefined
      if (journaling !== undefined && Result.isFailure(journaling)) {
        process.stderr.write(`peel run: ${journaling.failure.message}\n`)
        return ExitCode.usage
      }
      const journal = journaling?.success
      const realtimeRequests = journal?.realtime ?? requests
      // Live progress on a terminal, never with --json: a spinner for one request, a bar for many.
      const progress = Progress.make<Runner.Outcome>({
        total: bulk ? realtimeRequests.length : undefined,
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

      const report = (outcome: Runner.Outcome) => {
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

      // Resume: what is already on disk, by each request's identity (what determines its image).
      const todo: Array<Request.ImageRequest> = []
      for (const request of realtimeRequests) {
        const id = Runner.requestId(request)
        const found = yield* runner.lookup(request)
        if (found._tag === "Current") {
          const skipped: Runner.Outcome = { _tag: "Skipped", request, id, file: found.file }
          if (journal !== undefined) yield* journal.record(skipped)
          report(skipped)
        } else {
          if (found._tag === "Changed")
            process.stderr.write(
              found.placeholder === true
                ? `${id}: ${found.file} is a placeholder; trying again for the real image\n`
                : `${id}: the request changed since ${found.file} was made; making it again\n`,
            )
          todo.push(request)
        }
      }

      // A request starts only with a permit, and a permit comes back only once its outcome is saved and
      // printed; after a signal no permit is used again, so no new request starts.
      const permits = yield* Semaphore.make(options.concurrency)
      const signal = yield* Signals.firstSignal
      let stopping: Signals.Signal | undefined
      let started = 0
      let finished = 0
      // --max-spend: each request reserves the most its plan could cost before it starts and settles what it
      // cost when it ends; the first that could pass the cap (with nothing in flight to free room) stops the run.
      const cap = maxSpend === undefined ? undefined : Budget.runCap(maxSpend)
      const admit = (request: Request.ImageRequest): Effect.Effect<Request.ImageRequest | undefined> =>
        cap === undefined
          ? Effect.succeed(request)
          : runner.plan(request).pipe(
              Effect.map((plan) => Budget.reservationOf(plan, runner.channels)),
              Effect.orElseSucceed(() => 0),
              Effect.flatMap((usd) =>
                cap.admit(
                  Request.expand(request, Runner.requestId(request)).map((one) => Runner.requestId(one)),
                  usd,
                ),
              ),
              Effect.map((admitted) => (admitted ? request : undefined)),
            )
      const source = Stream.fromIterable(todo).pipe(
        Stream.rechunk(1),
        Stream.mapEffect((request) => Semaphore.take(permits, 1).pipe(Effect.as(request))),
        Stream.takeWhile(() => stopping === undefined),
        Stream.mapEffect(admit),
        Stream.takeWhile((request) => request !== undefined),
        Stream.map((request) => request!),
        Stream.tap((request) =>
          Effect.sync(() => {
            started += 1
          }).pipe(Effect.andThen(journal === undefined ? Effect.void : Effect.orDie(journal.start(request)))),
        ),
      )
      const work = runner.runAll(source, { concurrency: options.concurrency }).pipe(
        Stream.mapEffect(
          (outcome) =>
            (journal === undefined ? Effect.void : Effect.orDie(journal.record(outcome))).pipe(
              Effect.andThen(
                Effect.sync(() => {
                  finished += 1
                  cap?.settle(
                    outcome._tag === "Skipped" ? outcome.id : Runner.requestId(outcome.request),
                    costOf(outcome),
                  )
                  report(outcome)
                }),
              ),
              Effect.ensuring(Semaphore.release(permits, 1)),
            ),
          { concurrency: options.concurrency, unordered: true },
        ),
        Stream.runDrain,
      )
      const drain = Deferred.await(signal).pipe(
        Effect.tap((received) =>
          Effect.sync(() => {
            stopping = received
            const inFlight = started - finished
            progress.clear()
            process.stderr.write(
              `peel: ${received}: starting no more requests; waiting up to ${drainTimeoutMs / 1000}s for ${inFlight} in flight (${received} again aborts)\n`,
            )
          }),
        ),
        Effect.andThen(Effect.sleep(drainTimeoutMs)),
        Effect.tap(() =>
          Effect.sync(() => {
            process.stderr.write(
              `peel: ${started - finished} request(s) still in flight after ${drainTimeoutMs / 1000}s: abandoned\n`,
            )
          }),
        ),
      )

      const summary = (prefix: string | undefined): string => {
        const counts = progress.counts()
        const notStarted = todo.length - started
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

      // Batch jobs go out first, so the upstream works on them while real-time requests are made.
      if (journal !== undefined) yield* journal.submitBatch
      yield* Effect.raceFirst(work, drain).pipe(
        Effect.onInterrupt(() =>
          Effect.sync(() => printSummary(`aborted (${Signals.receivedSignal() ?? "interrupted"})`)),
        ),
      )
      const capped = cap?.refused()
      printSummary(
        stopping !== undefined
          ? `interrupted (${stopping})`
          : capped !== undefined
            ? `stopped by --max-spend ${money(capped.status.limitUsd).replace(/(\.\d\d)00$/, "$1")} (the next request could cost up to ${money(capped.requestedUsd)})`
            : undefined,
      )
      let batchFailed = 0
      if (journal !== undefined && journal.batch.length > 0 && stopping === undefined) {
        process.stderr.write(
          `${journal.batch.length} batch request(s): waiting for their jobs (Ctrl-C stops waiting; peel batch collect --state ${options.state ?? Batch.defaultStateDir} picks them up later)\n`,
        )
        const batchTotals = yield* Effect.orDie(
          journal.waitBatch({ every: pollEvery, max: Math.max(pollEvery, 300_000) }),
        )
        batchFailed = batchTotals.failed + batchTotals.cancelled
      }
      // Totals of every run of this input, from the journal (on stderr: stdout ends with the summary), when
      // they say more than the summary: earlier runs, batch jobs, work left.
      if (journal !== undefined) {
        const totals = yield* Effect.orDie(journal.totals)
        const counts = progress.counts()
        if (journal.batch.length > 0 || counts.skipped > 0 || totals.done + totals.failed < totals.total)
          process.stderr.write(`${Batch.bulkTotalsLine(totals)}\n`)
      }
      observed.end(stopping ?? (progress.counts().failed > 0 ? "failed" : "ok"))
      if (stopping !== undefined) return Signals.exitCodeOf(stopping)
      return capped !== undefined || progress.counts().failed > 0 || batchFailed > 0 ? ExitCode.failed : ExitCode.ok
    }),
  )
})
