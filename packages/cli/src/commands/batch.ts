/**
 * `peel batch`: Google's Batch API (half price) from the command line, with the work journal
 * (`--state DIR`, default `./.peel`, file `journal.sqlite`) as the one record of every request and job.
 *
 * - `peel batch submit PIPELINE --input REQUESTS.jsonl [--wait] [--out DIR] [--state DIR]` — every line is
 *   batch work; everything is checked before anything is sent (lines, pipeline, a batch channel for each
 *   request, the output folder, the journal). Requests already done or already in a job are not sent
 *   again. `--wait` polls with backoff, shows done / failed / pending, elapsed and ETA on a terminal, and
 *   collects each job as it finishes.
 * - `peel batch status [JOB]` — polls live jobs and prints where each job and request stands.
 * - `peel batch collect [JOB] [--out DIR]` — writes the images of finished jobs (idempotent: collecting
 *   again writes what is missing and pays nothing); what did not come back is resubmitted, made in real
 *   time or reported, as the pipeline's `select.batch.unfinished` says.
 * - `peel batch cancel JOB`, `peel batch list`.
 *
 * A JOB is Peel's job key, its display name upstream (`peel-<key>`) or the upstream's name
 * (`batches/...`). Every command first resolves submissions that were journaled but never confirmed (a
 * crash), by display name, so a crash never costs a second job.
 *
 * @since 0.3.0
 */
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { resolve } from "node:path"
import {
  BatchWork,
  Catalog,
  Money,
  type Output,
  type Pipeline,
  type Request,
  Requests,
  type Runner,
  Session,
  Units,
  WorkJournal,
} from "@peel/core"
import { Effect, Result, type Scope } from "effect"
import { ExitCode, printOpenError } from "../output.ts"
import { loadOptions, loadOptionsWith } from "../plugins.ts"

/** Where the journal lives unless `--state` says otherwise (relative to the working folder). */
export const defaultStateDir = WorkJournal.defaultStateDir

const money = Money.format

const write = (text: string) => process.stdout.write(`${text}\n`)
const complain = (text: string) => process.stderr.write(`${text}\n`)

/** Test hook: `PEEL_FAILPOINT=after-send` (or `after-write:2`, the 2nd time) kills the process there with SIGKILL. */
const failpointFromEnv = (): ((point: string) => void) | undefined => {
  const spec = process.env.PEEL_FAILPOINT
  if (spec === undefined || spec === "") return undefined
  const [name, nth] = spec.split(":")
  let seen = 0
  return (point) => {
    if (point !== name) return
    seen += 1
    if (seen >= Number(nth ?? 1)) process.kill(process.pid, "SIGKILL")
  }
}

interface Context {
  readonly runner: Runner.RunnerShape
  readonly work: BatchWork.BatchWorkShape
  readonly output: Output.OutputDirectory
}

/** Load a pipeline and build its runner, output folder and batch work over `journal`; `undefined` after printing why not. */
const open = (
  pipelineFile: string,
  out: string,
  journal: WorkJournal.WorkJournalShape,
  onEvent: (event: BatchWork.Event) => void,
  load: Pipeline.LoadOptions = loadOptions,
): Effect.Effect<Context | undefined, never, Scope.Scope> =>
  Effect.gen(function* () {
    const opened = yield* Effect.result(Session.open(pipelineFile, { out, load, onWarning: (line) => complain(line) }))
    if (Result.isFailure(opened)) {
      printOpenError("peel batch", pipelineFile, opened.failure)
      return undefined
    }
    const { runner, output } = opened.success
    const failpoint = failpointFromEnv()
    const work = BatchWork.make({
      runner,
      journal,
      output,
      pipelineFile: resolve(pipelineFile),
      onEvent,
      ...(failpoint === undefined ? {} : { failpoint }),
    })
    return { runner, work, output: output! }
  })

/** This process as a worker sharing an input: host, pid and a random part (unique among workers). */
export const workerName = (): string => `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`

/** One warning when the Postgres journal stops answering (work pauses and retries), one when it is back. */
export const outageWarnings = (command: string) => ({
  onUnreachable: (message: string) =>
    process.stderr.write(`warning: ${command}: ${message}; the work is paused and retried until it answers\n`),
  onReachable: () => process.stderr.write(`${command}: Postgres answers again; the work goes on\n`),
})

/** The journal: in Postgres with `--postgres URL` (shared by every worker), else the state folder's SQLite file. */
const openJournal = (stateDir: string, postgres: string | undefined) =>
  Effect.result(
    postgres === undefined
      ? WorkJournal.make(WorkJournal.fileIn(stateDir))
      : WorkJournal.makePostgres(postgres, outageWarnings("peel batch")),
  ).pipe(
    Effect.map((opened) => {
      if (Result.isSuccess(opened)) return opened.success
      complain(`peel batch: ${opened.failure.message}`)
      return undefined
    }),
  )

// ---------------------------------------------------------------------------------------------------
// reporting

/** Prints events as they happen: one line per image made or failed, jobs as they are sent or change. */
export const makeReporter = (json: boolean) => {
  const stats = { done: 0, failed: 0, batchUsd: 0, realtimeUsd: 0 }
  const onEvent = (event: BatchWork.Event) => {
    switch (event._tag) {
      case "Submitted":
        if (json)
          for (const id of event.ids)
            write(JSON.stringify({ event: "submitted", id, job: event.job.key, upstream: event.job.name }))
        else
          write(
            `job ${event.job.key} (${event.job.name ?? "?"}, ${event.job.model}): ${event.ids.length} request(s) sent — ${event.ids.slice(0, 8).join(", ")}${event.ids.length > 8 ? ", ..." : ""}`,
          )
        break
      case "Recovered":
        complain(
          event.found
            ? `job ${event.job.key}: was sent before a crash and never confirmed; found upstream as ${event.job.name} (not sent again)`
            : `job ${event.job.key}: was journaled before a crash but never reached the upstream; its requests will be sent again`,
        )
        break
      case "JobState":
        if (json)
          write(JSON.stringify({ event: "job", job: event.job.key, upstream: event.job.name, state: event.state }))
        else write(`job ${event.job.key}: ${event.state}`)
        break
      case "Done":
        stats.done += 1
        if (event.job !== undefined) stats.batchUsd += event.costUsd
        else stats.realtimeUsd += event.costUsd
        if (json)
          write(
            JSON.stringify({
              ok: true,
              id: event.id,
              file: event.file,
              channel: event.channel,
              job: event.job,
              costUsd: event.costUsd,
            }),
          )
        else write(`${event.id}  done  ${event.channel}  ${money(event.costUsd)}  ${event.file ?? ""}`)
        break
      case "Failed":
        stats.failed += 1
        if (json) write(JSON.stringify({ ok: false, id: event.id, error: event.error, costUsd: event.costUsd }))
        else write(`${event.id}  failed  ${event.error}`)
        break
      case "Requeued":
        if (json) write(JSON.stringify({ event: "requeued", id: event.id, reason: event.reason }))
        else complain(`${event.id}: ${event.reason}; sent again in a new job`)
        break
      case "Warning":
        complain(`warning: ${event.message}`)
        break
    }
  }
  return { onEvent, stats }
}

/**
 * The cost line: what was spent, and for batch work what the same images cost in real time (Google's
 * batch tier is half the standard price).
 */
const costLine = (totals: WorkJournal.Totals, records: ReadonlyArray<WorkJournal.RequestRecord>): string => {
  const batchDone = records.filter((record) => record.state === "done" && record.job !== undefined)
  const batchUsd = batchDone.reduce((sum, record) => sum + record.costUsd, 0)
  const standardUsd = batchUsd / Catalog.batchDiscount + (totals.costUsd - batchUsd)
  return `spent ${money(totals.costUsd)}${
    batchUsd > 0
      ? ` (batch price: ${money(batchUsd)} for ${batchDone.length} image(s), 50% of ${money(batchUsd / Catalog.batchDiscount)} in real time; all at standard price ${money(standardUsd)})`
      : ""
  }`
}

const summaryLine = (totals: WorkJournal.Totals): string =>
  `${totals.done} done, ${totals.failed} failed, ${totals.cancelled} cancelled, ${totals.queued} in jobs, ${totals.pending} pending`

/** A progress line on stderr when it is a terminal: done / failed / pending, elapsed, ETA. */
const makeProgress = (total: number) => {
  const tty = process.stderr.isTTY === true
  const started = Date.now()
  let shown = false
  return {
    show: (totals: WorkJournal.Totals) => {
      if (!tty) return
      const elapsed = (Date.now() - started) / 1000
      const finished = totals.done + totals.failed + totals.cancelled
      const left = total - finished
      const eta =
        finished === 0 || left === 0 ? (left === 0 ? "0s" : "unknown") : `${Math.round((elapsed / finished) * left)}s`
      process.stderr.write(
        `\r\x1b[2Kbatch: ${totals.done} done, ${totals.failed} failed, ${totals.pending + totals.queued} pending · ${Math.round(elapsed)}s elapsed · ETA ${eta}`,
      )
      shown = true
    },
    clear: () => {
      if (shown) process.stderr.write("\r\x1b[2K")
    },
  }
}

// ---------------------------------------------------------------------------------------------------
// commands

export interface SubmitOptions {
  readonly pipeline: string
  readonly input: string
  readonly wait: boolean
  readonly out: string
  readonly state: string
  /** `--postgres URL`: the journal in Postgres, shared by every worker (any worker can then check and collect). */
  readonly postgres?: string | undefined
  readonly json: boolean
  /** Shortest pause between polls (`5s`); backoff ×1.5 up to `pollMax`. */
  readonly pollEvery: string
  readonly pollMax: string
  /** `--redis URL`: the state services in this Redis (wins over the pipeline's `state.redis`). */
  readonly redis?: string | undefined
}

const pollMillis = (every: string, max: string): { every: number; max: number } | undefined => {
  const everyMs = Units.parseMillis(every)
  const maxMs = Units.parseMillis(max)
  if (everyMs === undefined || maxMs === undefined || everyMs <= 0) return undefined
  return { every: everyMs, max: Math.max(everyMs, maxMs) }
}

export const submit = Effect.fn("batch.submit")(function* (options: SubmitOptions) {
  const poll = pollMillis(options.pollEvery, options.pollMax)
  if (poll === undefined) {
    complain(`peel batch submit: --poll-every and --poll-max must be durations such as 500ms, 30s or 5m`)
    return ExitCode.usage
  }
  const read = yield* Effect.result(Requests.read(options.input))
  if (Result.isFailure(read)) {
    for (const problem of read.failure.problems) complain(problem.format())
    return ExitCode.usage
  }
  // Every line is batch work, whatever it says.
  const requests = read.success.map((request): Request.ImageRequest => ({ ...request, urgency: "batch" }))
  return yield* Effect.scoped(
    Effect.gen(function* () {
      const journal = yield* openJournal(options.state, options.postgres)
      if (journal === undefined) return ExitCode.usage
      const reporter = makeReporter(options.json)
      const context = yield* open(
        options.pipeline,
        options.out,
        journal,
        reporter.onEvent,
        loadOptionsWith({ redis: options.redis }),
      )
      if (context === undefined) return ExitCode.usage
      // Everything is checked before anything is sent: a request no batch channel takes stops the run. Each
      // request is planned once, here; the batch work reuses the plan.
      const planned = (yield* Effect.forEach(requests, context.runner.prepare)).flat()
      const refused = planned.flatMap((item) => {
        const plan = item.plan
        if ("_tag" in plan) return [`${item.id}: ${plan.message}`]
        if (plan.urgency !== "batch")
          return [
            `${item.id}: ${plan.candidates.length === 0 ? `no channel can serve it (${plan.refused.map((entry) => `${entry.channel}: ${entry.reason}`).join("; ")})` : "no batch channel of this pipeline can serve it (add a google-batch channel to select)"}`,
          ]
        return []
      })
      if (refused.length > 0) {
        for (const line of refused) complain(`${options.pipeline}: ${line}`)
        complain("peel batch submit: nothing was sent")
        return ExitCode.usage
      }
      const enqueued = yield* context.work.enqueue(planned)
      if (enqueued.done.length > 0) complain(`${enqueued.done.length} request(s) already done: not sent again`)
      if (enqueued.inJob.length > 0)
        complain(`${enqueued.inJob.length} request(s) already in a job: not sent again (peel batch status)`)
      yield* context.work.recover()
      yield* context.work.submit(enqueued.keys)
      if (!options.wait) {
        const totals = yield* journal.totals(enqueued.keys)
        const say = options.json ? complain : write
        say(`${summaryLine(totals)}; journal ${journal.location}`)
        say(
          `next: peel batch status --state ${options.state}   then   peel batch collect --state ${options.state} --out ${options.out}`,
        )
        return totals.failed > 0 || totals.pending > 0 ? ExitCode.failed : ExitCode.ok
      }
      const progress = makeProgress(enqueued.keys.length)
      const totals = yield* context.work.step(enqueued.keys).pipe(
        Effect.tap((totals) => Effect.sync(() => progress.show(totals))),
        Effect.repeat({
          schedule: BatchWork.pollSchedule(poll.every, poll.max),
          until: (totals) => totals.pending === 0 && totals.queued === 0,
        }),
      )
      progress.clear()
      const records = yield* journal.requests({ keys: enqueued.keys })
      // With --json, stdout carries only JSON lines; the summary goes to stderr.
      const say = options.json ? complain : write
      say(summaryLine(totals))
      say(costLine(totals, records))
      return totals.failed > 0 || totals.cancelled > 0 ? ExitCode.failed : ExitCode.ok
    }),
  )
})

export interface StateOptions {
  readonly state: string
  /** `--postgres URL`: the journal in Postgres, shared by every worker. */
  readonly postgres?: string | undefined
  readonly json: boolean
}

/** Build a context per pipeline that the given jobs came from. */
const withPipelines = <A>(
  jobs: ReadonlyArray<WorkJournal.JobRecord>,
  journal: WorkJournal.WorkJournalShape,
  out: (job: WorkJournal.JobRecord) => string,
  onEvent: (event: BatchWork.Event) => void,
  use: (context: Context, jobs: ReadonlyArray<WorkJournal.JobRecord>) => Effect.Effect<A, WorkJournal.JournalError>,
  load: Pipeline.LoadOptions = loadOptions,
): Effect.Effect<Array<A> | undefined, WorkJournal.JournalError, Scope.Scope> =>
  Effect.gen(function* () {
    const groups = new Map<string, Array<WorkJournal.JobRecord>>()
    for (const job of jobs) {
      const group = `${job.pipeline}\u0000${out(job)}`
      groups.set(group, [...(groups.get(group) ?? []), job])
    }
    const results: Array<A> = []
    for (const [group, members] of groups) {
      const [pipeline, folder] = group.split("\u0000") as [string, string]
      const context = yield* open(pipeline, folder, journal, onEvent, load)
      if (context === undefined) return undefined
      results.push(yield* use(context, members))
    }
    return results
  })

const pad = (text: string, width: number) => text.padEnd(width)

const jobTable = (
  jobs: ReadonlyArray<WorkJournal.JobRecord>,
  counts: ReadonlyMap<string, WorkJournal.Totals>,
): string => {
  const rows = jobs.map((job) => {
    const totals = counts.get(job.key)
    return [
      job.key,
      job.name ?? "-",
      job.state,
      job.model,
      String(job.requests),
      String(totals?.done ?? 0),
      String(totals?.failed ?? 0),
      String(totals?.queued ?? 0),
      new Date(job.createdAt).toISOString().slice(0, 19),
    ]
  })
  const header = ["JOB", "UPSTREAM", "STATE", "MODEL", "REQUESTS", "DONE", "FAILED", "IN JOB", "CREATED"]
  const widths = header.map((title, index) => Math.max(title.length, ...rows.map((row) => row[index]!.length)))
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, index) => pad(cell, widths[index]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")
}

const countsOf = (journal: WorkJournal.WorkJournalShape, jobs: ReadonlyArray<WorkJournal.JobRecord>) =>
  Effect.gen(function* () {
    const counts = new Map<string, WorkJournal.Totals>()
    for (const job of jobs) counts.set(job.key, WorkJournal.totalsOf(yield* journal.requests({ job: job.key })))
    return counts
  })

const printJobs = (journal: WorkJournal.WorkJournalShape, jobs: ReadonlyArray<WorkJournal.JobRecord>, json: boolean) =>
  Effect.gen(function* () {
    const counts = yield* countsOf(journal, jobs)
    if (json) for (const job of jobs) write(JSON.stringify({ ...job, counts: counts.get(job.key) }))
    else if (jobs.length === 0) write("no batch jobs in this journal")
    else write(jobTable(jobs, counts))
  })

const findJob = (journal: WorkJournal.WorkJournalShape, reference: string) =>
  Effect.map(journal.job(reference), (job) => {
    if (job === undefined) complain(`peel batch: no job "${reference}" in ${journal.location} (peel batch list)`)
    return job
  })

export const status = Effect.fn("batch.status")(function* (options: StateOptions & { readonly job?: string }) {
  return yield* Effect.scoped(
    Effect.gen(function* () {
      const journal = yield* openJournal(options.state, options.postgres)
      if (journal === undefined) return ExitCode.usage
      const selected =
        options.job === undefined
          ? yield* journal.jobs({ states: ["intent", "pending", "running"] })
          : [yield* findJob(journal, options.job)]
      if (selected.some((job) => job === undefined)) return ExitCode.usage
      const jobs = selected as ReadonlyArray<WorkJournal.JobRecord>
      const reporter = makeReporter(options.json)
      const done = yield* withPipelines(
        jobs,
        journal,
        (job) => job.outDir ?? "./out",
        (event) => {
          if (event._tag === "Warning" || event._tag === "Recovered") reporter.onEvent(event)
        },
        (context, members) =>
          Effect.gen(function* () {
            yield* context.work.recover()
            for (const job of members) {
              const fresh = (yield* journal.job(job.key)) ?? job
              yield* context.work.refresh(fresh, { collect: false })
            }
          }),
      )
      if (done === undefined) return ExitCode.usage
      const refreshed =
        options.job === undefined
          ? yield* journal.jobs()
          : (yield* Effect.forEach(jobs, (job) => journal.job(job.key))).flatMap((job) =>
              job === undefined ? [] : [job],
            )
      yield* printJobs(journal, refreshed, options.json)
      if (options.job !== undefined && !options.json) {
        const members = yield* journal.requests({ job: refreshed[0]!.key })
        for (const member of members)
          write(
            `  ${member.id}  ${member.state}${member.file === undefined ? "" : `  ${member.file}`}${member.error === undefined || member.state === "done" ? "" : `  ${member.error}`}`,
          )
      }
      return ExitCode.ok
    }),
  )
})

export interface CollectOptions extends StateOptions {
  readonly job?: string
  readonly out?: string
  /** `--redis URL`: the state services in this Redis (wins over the pipeline's `state.redis`). */
  readonly redis?: string
}

export const collect = Effect.fn("batch.collect")(function* (options: CollectOptions) {
  return yield* Effect.scoped(
    Effect.gen(function* () {
      const journal = yield* openJournal(options.state, options.postgres)
      if (journal === undefined) return ExitCode.usage
      let jobs: ReadonlyArray<WorkJournal.JobRecord>
      if (options.job !== undefined) {
        const job = yield* findJob(journal, options.job)
        if (job === undefined) return ExitCode.usage
        jobs = [job]
      } else {
        const queued = yield* journal.requests({ states: ["queued"] })
        const keys = new Set(queued.flatMap((record) => (record.job === undefined ? [] : [record.job])))
        jobs = (yield* journal.jobs()).filter((job) => keys.has(job.key))
      }
      if (jobs.length === 0) {
        write("nothing to collect")
        return ExitCode.ok
      }
      const reporter = makeReporter(options.json)
      const members = (yield* Effect.forEach(jobs, (job) => journal.requests({ job: job.key }))).flat()
      const keys = members.map((member) => ({ id: member.id, hash: member.hash }))
      const done = yield* withPipelines(
        jobs,
        journal,
        (job) => options.out ?? job.outDir ?? "./out",
        reporter.onEvent,
        (context, group) =>
          Effect.gen(function* () {
            yield* context.work.recover()
            for (const job of group) {
              const fresh = (yield* journal.job(job.key)) ?? job
              yield* context.work.refresh(fresh, { collect: true })
            }
            // What the pipeline sends back for another try goes out now, in a new job.
            yield* context.work.submit(keys)
          }),
        loadOptionsWith({ redis: options.redis }),
      )
      if (done === undefined) return ExitCode.usage
      const totals = yield* journal.totals(keys)
      const say = options.json ? complain : write
      say(summaryLine(totals))
      say(costLine(totals, yield* journal.requests({ keys })))
      if (totals.queued > 0) complain(`${totals.queued} request(s) still in running jobs: collect again later`)
      return totals.failed > 0 || totals.cancelled > 0 ? ExitCode.failed : ExitCode.ok
    }),
  )
})

export const cancel = Effect.fn("batch.cancel")(function* (options: StateOptions & { readonly job: string }) {
  return yield* Effect.scoped(
    Effect.gen(function* () {
      const journal = yield* openJournal(options.state, options.postgres)
      if (journal === undefined) return ExitCode.usage
      const job = yield* findJob(journal, options.job)
      if (job === undefined) return ExitCode.usage
      const reporter = makeReporter(options.json)
      let failed: string | undefined
      const done = yield* withPipelines(
        [job],
        journal,
        (entry) => entry.outDir ?? "./out",
        reporter.onEvent,
        (context) =>
          context.work.cancel(job).pipe(
            Effect.catch((error) =>
              error._tag === "JournalError"
                ? Effect.fail(error)
                : Effect.sync(() => {
                    failed = `${error._tag}: ${error.message}`
                    return job
                  }),
            ),
          ),
      )
      if (done === undefined) return ExitCode.usage
      if (failed !== undefined) {
        complain(`peel batch cancel: ${failed}`)
        return ExitCode.failed
      }
      yield* printJobs(journal, [(yield* journal.job(job.key)) ?? job], options.json)
      return ExitCode.ok
    }),
  )
})

export const list = Effect.fn("batch.list")(function* (options: StateOptions) {
  return yield* Effect.scoped(
    Effect.gen(function* () {
      const journal = yield* openJournal(options.state, options.postgres)
      if (journal === undefined) return ExitCode.usage
      yield* printJobs(journal, yield* journal.jobs(), options.json)
      return ExitCode.ok
    }),
  )
})

/** The journal's line at the end of a bulk run: every request of the input, across runs. */
export const bulkTotalsLine = (totals: WorkJournal.Totals): string =>
  `journal: ${totals.done} of ${totals.total} done, ${totals.failed} failed${totals.queued + totals.pending > 0 ? `, ${totals.queued + totals.pending} unfinished` : ""}; spent ${money(totals.costUsd)} on this input in all runs`
