/**
 * Batch work: `urgency: batch` requests through a batch channel's {@link BatchFacet}, with the
 * {@link WorkJournal} as the one record, so that no image is lost or paid for twice across crashes,
 * restarts and expiries.
 *
 * - **enqueue**: plan each request and journal it (by id and request hash); requests already done, or
 *   already in a job, are left alone — re-running the same submit sends nothing twice.
 * - **submit**: group pending requests by batch channel and model into jobs within the channel's bounds
 *   (requests and bytes); journal each job as an *intent* under a fresh display name, **then** send it,
 *   then confirm it with the upstream's name.
 * - **recover**: an intent never confirmed (a crash between journal and send, or between send and
 *   confirm) is looked up upstream by its display name: found, it is confirmed; not found, its requests
 *   are pending again. Nothing is resent while the lookup itself fails.
 * - **refresh**: poll a job; once it succeeded, **collect**: each image is checked, written atomically
 *   (Output), and only then its request marked done with its cost (batch tier: `Pricing.attemptCost`), so
 *   a crash mid-collection means the next collection writes what is missing. Collecting is free upstream.
 * - **what did not come back** (an expired or failed job, a retryable error inside it, a missing result):
 *   the plan's `unfinished` decides — `resubmit` in a new job (a bounded number of times), `realtime`
 *   through the runner's real-time channels (skipped when the image is already on disk), or `report`.
 *
 * @since 0.3.0
 */
import { randomBytes } from "node:crypto"
import type { BatchFacet, Channel, ChannelImage } from "@peel/contract/Channel"
import { type ChannelError, isChannelError } from "@peel/contract/Errors"
import { inspectImage } from "@peel/contract/Image"
import { attemptCost } from "@peel/contract/Pricing"
import type { ImageRequest } from "@peel/contract/Request"
import { Effect, Schedule } from "effect"
import { type OutputDirectory, requestHash } from "../output/Output.ts"
import * as Identity from "../plan/Identity.ts"
import * as Plan from "../plan/Plan.ts"
import { isPlanned, type Planned, type RunnerShape } from "../runner/Runner.ts"
import {
  finishedJobStates,
  type JobRecord,
  type JobState,
  type JournalError,
  type RequestKey,
  type RequestRecord,
  type Totals,
  type WorkJournalShape,
} from "./WorkJournal.ts"

/** What happened, as it happens (progress displays, logs). @category models */
export type Event =
  | { readonly _tag: "Submitted"; readonly job: JobRecord; readonly ids: ReadonlyArray<string> }
  | { readonly _tag: "Recovered"; readonly job: JobRecord; readonly found: boolean }
  | { readonly _tag: "JobState"; readonly job: JobRecord; readonly state: JobState }
  | {
      readonly _tag: "Done"
      readonly id: string
      readonly file: string | undefined
      readonly costUsd: number
      readonly channel: string
      readonly job?: string | undefined
    }
  | { readonly _tag: "Failed"; readonly id: string; readonly error: string; readonly costUsd: number }
  | { readonly _tag: "Requeued"; readonly id: string; readonly reason: string }
  | { readonly _tag: "Warning"; readonly message: string }

/** @category models */
export interface Options {
  readonly runner: RunnerShape
  readonly journal: WorkJournalShape
  /** The pipeline file, recorded on each job so later commands can rebuild its channel. */
  readonly pipelineFile: string
  /** Where images are written at collection (and by real-time fallbacks). */
  readonly output?: OutputDirectory | undefined
  readonly onEvent?: ((event: Event) => void) | undefined
  /** Test hook: called at named points (`after-intent`, `after-send`, `after-write`) to crash there. */
  readonly failpoint?: ((point: string) => void) | undefined
}

/** What {@link BatchWorkShape.enqueue} did with each request. @category models */
export interface Enqueued {
  /** Every request's key, in input order. */
  readonly keys: ReadonlyArray<RequestKey>
  /** Already done (image on disk, journaled). */
  readonly done: ReadonlyArray<RequestRecord>
  /** Already in a batch job. */
  readonly inJob: ReadonlyArray<RequestRecord>
  /** Refused before anything was spent: invalid, or no batch channel can take it. */
  readonly refused: ReadonlyArray<{ readonly id: string; readonly reason: string }>
}

/** @category models */
export interface BatchWorkShape {
  /** Journal batch work; a request planned for this run ({@link Planned}) is not planned again. */
  readonly enqueue: (requests: ReadonlyArray<ImageRequest | Planned>) => Effect.Effect<Enqueued, JournalError>
  readonly recover: () => Effect.Effect<void, JournalError>
  readonly submit: (keys: ReadonlyArray<RequestKey>) => Effect.Effect<ReadonlyArray<JobRecord>, JournalError>
  /** Poll a job and record its state; with `collect`, act on a finished one (collect, resubmit, fall back). */
  readonly refresh: (job: JobRecord, options: { readonly collect: boolean }) => Effect.Effect<JobRecord, JournalError>
  readonly cancel: (job: JobRecord) => Effect.Effect<JobRecord, JournalError | ChannelError>
  /** One round: recover, submit what is pending, refresh (and collect) every job holding these keys. */
  readonly step: (keys: ReadonlyArray<RequestKey>) => Effect.Effect<Totals, JournalError>
  /** Rounds until nothing of `keys` is pending or in a job, polling with backoff from `every` up to `max`. */
  readonly wait: (
    keys: ReadonlyArray<RequestKey>,
    options: { readonly every: number; readonly max: number },
  ) => Effect.Effect<Totals, JournalError>
}

/**
 * The key of a request: its id and its request identity (`Identity.journalKey(plan)`). Without its plan
 * (a request that cannot be planned, which no job ever holds) the hash is the old request hash.
 *
 * @category ids
 */
export const keyOf = (request: ImageRequest, plan?: Plan.Plan): RequestKey =>
  plan === undefined ? { id: Plan.requestId(request), hash: requestHash(request) } : Identity.journalKey(plan)

/** A fresh job key; the job's display name upstream is `peel-<key>`. @category ids */
export const newJobKey = (): string => `${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`

/** States in which a job still changes upstream. */
const liveStates: ReadonlyArray<JobState> = ["pending", "running"]

const messageOf = (error: unknown): string =>
  isChannelError(error) ? `${error._tag}: ${error.message}` : error instanceof Error ? error.message : String(error)

/**
 * Polling with backoff: `every`, then ×1.5 each round, never more than `max` apart.
 *
 * @category scheduling
 */
export const pollSchedule = (every: number, max: number) =>
  Schedule.min([Schedule.exponential(Math.max(1, every), 1.5), Schedule.spaced(Math.max(every, max))])

/** Build the batch work of a runner's pipeline over a journal. @category constructors */
export const make = (options: Options): BatchWorkShape => {
  const { runner, journal, output } = options
  const emit = (event: Event) => options.onEvent?.(event)
  const failpoint = (point: string) => options.failpoint?.(point)

  const batchChannel = (name: string): (Channel & { readonly batch: BatchFacet }) | undefined => {
    const channel = runner.channels.get(name)
    return channel?.batch === undefined ? undefined : (channel as Channel & { readonly batch: BatchFacet })
  }

  /**
   * Each request is planned once by this batch work (submit, collect and what did not come back reuse the
   * plan), keyed by its id and request hash (known before it is planned); a plan made earlier in the run
   * is handed in through `enqueue`.
   */
  const plans = new Map<string, Plan.Plan | string>()
  const cacheKey = (key: RequestKey) => `${key.id}\u0000${key.hash}`
  const planOf = (request: ImageRequest): Effect.Effect<Plan.Plan | string> => {
    const key = cacheKey(keyOf(request))
    const known = plans.get(key)
    if (known !== undefined) return Effect.succeed(known)
    return runner.plan(request).pipe(
      Effect.map((plan): Plan.Plan | string => plan),
      Effect.catch((error) => Effect.succeed(error.message)),
      Effect.tap((planned) => Effect.sync(() => plans.set(key, planned))),
    )
  }

  const enqueue: BatchWorkShape["enqueue"] = (requests) =>
    Effect.gen(function* () {
      const keys: Array<RequestKey> = []
      const done: Array<RequestRecord> = []
      const inJob: Array<RequestRecord> = []
      const refused: Array<{ id: string; reason: string }> = []
      const fresh: Array<{ key: RequestKey; request: ImageRequest; plan: unknown }> = []
      for (const item of requests) {
        const request = isPlanned(item) ? item.request : item
        if (isPlanned(item)) plans.set(cacheKey(keyOf(request)), "_tag" in item.plan ? item.plan.message : item.plan)
        const planned = yield* planOf(request)
        const key = keyOf(request, typeof planned === "string" ? undefined : planned)
        keys.push(key)
        if (typeof planned === "string") {
          refused.push({ id: key.id, reason: planned })
          continue
        }
        if (planned.urgency !== "batch") {
          refused.push({
            id: key.id,
            reason:
              planned.candidates.length === 0 && planned.request.urgency === "batch"
                ? `no channel can serve it (${planned.refused.map((entry) => `${entry.channel}: ${entry.reason}`).join("; ")})`
                : Plan.noBatchChannelReason,
          })
          continue
        }
        const existing = yield* journal.request(key)
        if (existing === undefined) {
          fresh.push({ key, request, plan: Plan.toJson(planned, runner.channels) })
          continue
        }
        if (existing.state === "done") done.push(existing)
        else if (existing.state === "queued") inJob.push(existing)
        else if (existing.state === "failed" || existing.state === "cancelled" || existing.state === "running")
          // Asked for again: a re-run retries what ended without an image.
          yield* journal.updateRequest(key, { state: "pending", plan: Plan.toJson(planned, runner.channels) })
      }
      yield* journal.add(fresh)
      return { keys, done, inJob, refused }
    })

  /** Resolve every journaled intent: found upstream by display name → confirmed; not found → pending again. */
  const recover: BatchWorkShape["recover"] = () =>
    Effect.gen(function* () {
      for (const job of yield* journal.jobs({ states: ["intent"] })) {
        const channel = batchChannel(job.channel)
        if (channel?.batch.find === undefined) {
          emit({
            _tag: "Warning",
            message: `job ${job.key} was journaled but never confirmed, and channel ${job.channel} cannot look jobs up: its requests stay queued (nothing is sent twice)`,
          })
          continue
        }
        const found = yield* Effect.result(channel.batch.find(job.displayName))
        if (found._tag === "Failure") {
          emit({
            _tag: "Warning",
            message: `job ${job.key}: cannot look up ${job.displayName} (${messageOf(found.failure)}); its requests stay queued until the lookup succeeds`,
          })
          continue
        }
        if (found.success !== undefined) {
          yield* journal.updateJob(job.key, { state: found.success.state, name: found.success.name })
          emit({
            _tag: "Recovered",
            job: { ...job, state: found.success.state, name: found.success.name },
            found: true,
          })
        } else {
          yield* journal.updateJob(job.key, { state: "unsent" }, { state: "pending", unsent: true })
          emit({ _tag: "Recovered", job: { ...job, state: "unsent" }, found: false })
        }
      }
    })

  const submit: BatchWorkShape["submit"] = (keys) =>
    Effect.gen(function* () {
      const pending = yield* journal.requests({ keys, states: ["pending"] })
      /** channel → model → requests, in input order. */
      const groups = new Map<string, { channel: string; model: string; plans: Array<Plan.Plan> }>()
      for (const record of pending) {
        const planned = yield* planOf(record.request)
        if (typeof planned === "string" || planned.urgency !== "batch") {
          const reason = typeof planned === "string" ? planned : Plan.noBatchChannelReason
          yield* journal.updateRequest(record, { state: "failed", error: reason })
          emit({ _tag: "Failed", id: record.id, error: reason, costUsd: record.costUsd })
          continue
        }
        const channel = planned.candidates[0]!
        const group = `${channel}\u0000${planned.model}`
        const known = groups.get(group)
        if (known === undefined) groups.set(group, { channel, model: planned.model, plans: [planned] })
        else known.plans.push(planned)
      }
      const submitted: Array<JobRecord> = []
      for (const { channel: name, model, plans } of groups.values()) {
        const channel = batchChannel(name)!
        const limits = channel.batch.limits ?? {
          maxRequests: Number.POSITIVE_INFINITY,
          maxBytes: Number.POSITIVE_INFINITY,
        }
        const chunks: Array<Array<Plan.Plan>> = []
        let chunk: Array<Plan.Plan> = []
        let bytes = 0
        for (const plan of plans) {
          const size = channel.batch.sizeOf?.(plan.channelRequest) ?? 0
          if (chunk.length > 0 && (chunk.length + 1 > limits.maxRequests || bytes + size > limits.maxBytes)) {
            chunks.push(chunk)
            chunk = []
            bytes = 0
          }
          chunk.push(plan)
          bytes += size
        }
        if (chunk.length > 0) chunks.push(chunk)
        for (const members of chunks) {
          const key = newJobKey()
          const job: JobRecord = {
            key,
            displayName: `peel-${key}`,
            channel: name,
            model,
            pipeline: options.pipelineFile,
            outDir: output?.dir,
            state: "intent",
            requests: members.length,
            createdAt: Date.now(),
            updatedAt: Date.now(),
          }
          const memberKeys = members.map((plan) => Identity.journalKey(plan))
          // Journaled before it is sent: a crash from here on is resolved by display name, never by a second job.
          if (!(yield* journal.openJob(job, memberKeys))) {
            emit({
              _tag: "Warning",
              message: `${memberKeys.length} request(s) were taken by another run meanwhile: not sent by this one`,
            })
            continue
          }
          failpoint("after-intent")
          const sent = yield* Effect.result(
            channel.batch.submit(
              members.map((plan) => plan.channelRequest),
              { displayName: job.displayName },
            ),
          )
          if (sent._tag === "Success") {
            failpoint("after-send")
            yield* journal.updateJob(key, { state: sent.success.state, name: sent.success.name })
            const confirmed = { ...job, state: sent.success.state, name: sent.success.name }
            submitted.push(confirmed)
            emit({ _tag: "Submitted", job: confirmed, ids: memberKeys.map((member) => member.id) })
            continue
          }
          // The send failed — but it may have reached the upstream (a lost answer): look before sending again.
          const error = sent.failure
          const found =
            channel.batch.find === undefined ? undefined : yield* Effect.result(channel.batch.find(job.displayName))
          if (found?._tag === "Success" && found.success !== undefined) {
            yield* journal.updateJob(key, { state: found.success.state, name: found.success.name })
            const confirmed = { ...job, state: found.success.state, name: found.success.name }
            submitted.push(confirmed)
            emit({ _tag: "Submitted", job: confirmed, ids: memberKeys.map((member) => member.id) })
            continue
          }
          if (found?._tag !== "Success") {
            emit({
              _tag: "Warning",
              message: `job ${key}: sending failed (${messageOf(error)}) and it cannot be looked up: its requests stay queued until a later run finds out`,
            })
            continue
          }
          const retryable = error.retryable
          yield* journal.updateJob(
            key,
            { state: "unsent", error: messageOf(error) },
            retryable
              ? { state: "pending", error: messageOf(error), unsent: true }
              : { state: "failed", error: messageOf(error) },
          )
          for (const member of memberKeys)
            if (retryable)
              emit({ _tag: "Requeued", id: member.id, reason: `the job could not be sent: ${messageOf(error)}` })
            else emit({ _tag: "Failed", id: member.id, error: messageOf(error), costUsd: 0 })
          if (retryable) return submitted
        }
      }
      return submitted
    })

  /** What happens to a member that did not come back, by its plan's `unfinished`. */
  const unfinished = (record: RequestRecord, reason: string, costUsd: number): Effect.Effect<void, JournalError> =>
    Effect.gen(function* () {
      const planned = yield* planOf(record.request)
      const policy = (typeof planned === "string" ? undefined : planned.unfinished) ?? Plan.defaultUnfinished
      const resubmit = policy.action === "resubmit" && record.sends <= policy.resubmits
      const realtime = policy.action === "realtime" && typeof planned !== "string"
      // Claimed out of its job once, with what the job cost for it: a second run collecting the same job
      // finds it no longer queued and leaves it alone.
      const claimed = yield* journal.updateRequest(record, {
        onlyIf: "queued",
        state: resubmit ? "pending" : realtime ? "running" : "failed",
        error: reason,
        addCostUsd: costUsd,
      })
      if (!claimed) return
      if (resubmit) {
        emit({ _tag: "Requeued", id: record.id, reason })
        return
      }
      if (realtime) {
        const now = { ...record.request, urgency: "realtime" as const }
        const found = output?.lookup(record.id, record.hash)
        if (found?._tag === "Current") {
          yield* journal.updateRequest(record, {
            state: "done",
            file: found.file,
            channel: "realtime",
          })
          emit({
            _tag: "Done",
            id: record.id,
            file: found.file,
            costUsd: record.costUsd + costUsd,
            channel: "realtime",
          })
          return
        }
        const ran = yield* Effect.result(runner.run(now))
        if (ran._tag === "Success") {
          const result = ran.success
          let file = result.file
          if (file === undefined && output !== undefined) {
            const written = yield* Effect.result(output.write(record.id, record.hash, result.bytes, result.mimeType))
            file = written._tag === "Success" ? written.success : undefined
          }
          yield* journal.updateRequest(record, {
            state: "done",
            channel: result.channel,
            addCostUsd: result.costUsd,
            ...(file === undefined ? {} : { file }),
          })
          emit({
            _tag: "Done",
            id: record.id,
            file,
            costUsd: record.costUsd + costUsd + result.costUsd,
            channel: result.channel,
          })
          return
        }
        const failure = ran.failure
        yield* journal.updateRequest(record, {
          state: "failed",
          error: `${reason}; in real time: ${failure.message}`,
          addCostUsd: failure.costUsd,
        })
        emit({
          _tag: "Failed",
          id: record.id,
          error: `${reason}; in real time: ${failure.message}`,
          costUsd: record.costUsd + costUsd + failure.costUsd,
        })
        return
      }
      const final = policy.action === "resubmit" ? `${reason} (sent in ${record.sends} job(s))` : reason
      if (final !== reason) yield* journal.updateRequest(record, { error: final })
      emit({ _tag: "Failed", id: record.id, error: final, costUsd: record.costUsd + costUsd })
    })

  const collect = (job: JobRecord, channel: Channel & { readonly batch: BatchFacet }) =>
    Effect.gen(function* () {
      const members = yield* journal.requests({ job: job.key, states: ["queued"] })
      if (members.length === 0) return true
      const results = yield* Effect.result(channel.batch.collect(job.name!))
      if (results._tag === "Failure") {
        emit({ _tag: "Warning", message: `job ${job.key}: cannot collect yet (${messageOf(results.failure)})` })
        return false
      }
      const byId = new Map<string, ChannelImage | ChannelError>()
      for (const entry of results.success) byId.set(entry.id, entry.result)
      for (const member of members) {
        const result = byId.get(member.id)
        const planned = yield* planOf(member.request)
        const channelRequest =
          typeof planned === "string"
            ? {
                id: member.id,
                prompt: member.request.prompt,
                model: job.model,
                size: "1K" as const,
                aspectRatio: "1:1" as const,
              }
            : planned.channelRequest
        if (result === undefined) {
          yield* unfinished(member, `job ${job.key} brought no result for it`, 0)
          continue
        }
        if (isChannelError(result)) {
          const cost = attemptCost(channel, channelRequest, result, false)
          if (result.retryable) yield* unfinished(member, messageOf(result), cost)
          else {
            const marked = yield* journal.updateRequest(member, {
              state: "failed",
              onlyIf: "queued",
              error: messageOf(result),
              addCostUsd: cost,
            })
            if (marked)
              emit({ _tag: "Failed", id: member.id, error: messageOf(result), costUsd: member.costUsd + cost })
          }
          continue
        }
        const cost = attemptCost(channel, channelRequest, result, true)
        const info = inspectImage(result.bytes)
        if (info === undefined) {
          yield* unfinished(member, "MalformedResponse: the result is not a whole image", cost)
          continue
        }
        let file: string | undefined
        if (output !== undefined) {
          const written = yield* Effect.result(output.write(member.id, member.hash, result.bytes, info.mimeType))
          if (written._tag === "Failure") {
            // Not marked done: the next collection writes it (collecting again costs nothing).
            emit({ _tag: "Warning", message: `${member.id}: ${written.failure.message}` })
            continue
          }
          file = written.success
          failpoint("after-write")
        }
        // Only the run that moves it from queued records it (and its cost): two runs collecting at once count it once.
        const marked = yield* journal.updateRequest(member, {
          state: "done",
          onlyIf: "queued",
          addCostUsd: cost,
          ...(file === undefined ? {} : { file }),
        })
        if (marked)
          emit({
            _tag: "Done",
            id: member.id,
            file,
            costUsd: member.costUsd + cost,
            channel: job.channel,
            job: job.key,
          })
      }
      return (yield* journal.requests({ job: job.key, states: ["queued"] })).length === 0
    })

  const refresh: BatchWorkShape["refresh"] = (job, refreshOptions) =>
    Effect.gen(function* () {
      const channel = batchChannel(job.channel)
      if (channel === undefined || job.name === undefined) return job
      let state = job.state
      if (liveStates.includes(state)) {
        const polled = yield* Effect.result(channel.batch.poll(job.name))
        if (polled._tag === "Failure") {
          emit({ _tag: "Warning", message: `job ${job.key}: cannot poll ${job.name} (${messageOf(polled.failure)})` })
          return job
        }
        if (polled.success.state !== state) {
          state = polled.success.state
          yield* journal.updateJob(job.key, {
            state,
            ...(polled.success.error === undefined ? {} : { error: polled.success.error }),
          })
          emit({ _tag: "JobState", job: { ...job, state }, state })
        }
      }
      const current = { ...job, state }
      if (!refreshOptions.collect || liveStates.includes(state)) return current
      if (state === "succeeded") {
        const complete = yield* collect(current, channel)
        if (!complete) return current
        yield* journal.updateJob(job.key, { state: "collected" })
        emit({ _tag: "JobState", job: { ...current, state: "collected" }, state: "collected" })
        return { ...current, state: "collected" as const }
      }
      const members = yield* journal.requests({ job: job.key, states: ["queued"] })
      for (const member of members) {
        if (state === "cancelled") {
          const marked = yield* journal.updateRequest(member, {
            state: "cancelled",
            onlyIf: "queued",
            error: `job ${job.key} was cancelled`,
          })
          if (marked)
            emit({ _tag: "Failed", id: member.id, error: `job ${job.key} was cancelled`, costUsd: member.costUsd })
        } else
          yield* unfinished(
            member,
            `job ${job.key} ${state === "expired" ? "expired (48 h) with no results" : `is ${state}`}`,
            0,
          )
      }
      return current
    })

  const cancel: BatchWorkShape["cancel"] = (job) =>
    Effect.gen(function* () {
      const channel = batchChannel(job.channel)
      if (channel?.batch.cancel === undefined || job.name === undefined) return job
      yield* channel.batch.cancel(job.name)
      return yield* refresh(
        { ...job, state: liveStates.includes(job.state) ? job.state : "running" },
        { collect: true },
      )
    })

  /** Jobs holding any of these keys that still need a poll or a collection. */
  const jobsFor = (keys: ReadonlyArray<RequestKey>) =>
    Effect.gen(function* () {
      const queued = yield* journal.requests({ keys, states: ["queued"] })
      const wanted = new Set(queued.flatMap((record) => (record.job === undefined ? [] : [record.job])))
      const jobs = yield* journal.jobs()
      return jobs
        .filter((job) => wanted.has(job.key) && !finishedJobStates.includes(job.state) && job.state !== "intent")
        .concat(jobs.filter((job) => wanted.has(job.key) && ["failed", "expired", "cancelled"].includes(job.state)))
    })

  const step: BatchWorkShape["step"] = (keys) =>
    Effect.gen(function* () {
      yield* recover()
      yield* submit(keys)
      for (const job of yield* jobsFor(keys)) yield* refresh(job, { collect: true })
      // What a finished job sent back for resubmission goes out now, not a round later.
      if ((yield* journal.requests({ keys, states: ["pending"] })).length > 0) yield* submit(keys)
      return yield* journal.totals(keys)
    })

  const wait: BatchWorkShape["wait"] = (keys, waitOptions) =>
    step(keys).pipe(
      Effect.repeat({
        schedule: pollSchedule(waitOptions.every, waitOptions.max),
        until: (totals) => totals.pending === 0 && totals.queued === 0,
      }),
    )

  return { enqueue, recover, submit, refresh, cancel, step, wait }
}
