/**
 * The work journal's model: request and job records, their states and patches, the store's shape and its
 * service tag. The store implementations (`WorkJournalSqlite.ts`, and the shared stores to come) and the
 * journal's front door (`WorkJournal.ts`) both depend on this file.
 *
 * @since 0.4.0
 */

import type { ImageRequest } from "@peel/contract/Request"
import { Context, type Effect, Schema } from "effect"

/** Where a request stands. @category models */
export type RequestState =
  /** Known, not yet in a job (or to be sent again). */
  | "pending"
  /** In a batch job (journaled or confirmed upstream). */
  | "queued"
  /** Its image is on disk. */
  | "done"
  /** Ended without an image; `error` says why. */
  | "failed"
  /** Its job was cancelled. */
  | "cancelled"
  /** Being made in real time (what a batch did not bring back); a crash leaves it to be made again. */
  | "running"

/** Where a batch job stands. @category models */
export type JobState =
  /** Journaled, not yet confirmed upstream (a crash here is resolved by display name). */
  | "intent"
  | "pending"
  | "running"
  | "succeeded"
  | "failed"
  | "cancelled"
  | "expired"
  /** Every result written to disk and journaled. */
  | "collected"
  /** Never reached the upstream (the send failed and no job carries its display name). */
  | "unsent"

/** States after which a job changes no more upstream. @category models */
export const finishedJobStates: ReadonlyArray<JobState> = ["failed", "cancelled", "expired", "collected", "unsent"]

/** The identity of a request: its id and the hash of what it asks for. @category models */
export interface RequestKey {
  readonly id: string
  readonly hash: string
}

/** One request as the journal holds it. @category models */
export interface RequestRecord extends RequestKey {
  readonly request: ImageRequest
  /** The plan as JSON (`Plan.toJson`): model, size, candidates, adjustments. */
  readonly plan: unknown
  readonly state: RequestState
  /** The channel serving it (the batch channel while queued). */
  readonly channel?: string | undefined
  /** The key of the batch job holding it. */
  readonly job?: string | undefined
  readonly file?: string | undefined
  /** Everything it cost so far (billed failures and earlier jobs included). */
  readonly costUsd: number
  readonly error?: string | undefined
  /** How many batch jobs it has been sent in. */
  readonly sends: number
  readonly updatedAt: number
  /** The worker that claimed it last ({@link WorkJournalShape.claim}), while it runs. */
  readonly worker?: string | undefined
  /** Epoch ms until which that worker's claim holds (renewed while it lives). */
  readonly leaseUntil?: number | undefined
}

/** One batch job. @category models */
export interface JobRecord {
  /** Peel's own key for the job; the display name upstream is `displayName`. */
  readonly key: string
  readonly displayName: string
  /** The upstream's name (`batches/...`) once confirmed. */
  readonly name?: string | undefined
  readonly channel: string
  readonly model: string
  /** The pipeline file (absolute) that made it, so `status`, `collect` and `cancel` can rebuild its channel. */
  readonly pipeline: string
  /** Where its images go unless `collect --out` says otherwise. */
  readonly outDir?: string | undefined
  readonly state: JobState
  readonly requests: number
  readonly createdAt: number
  readonly updatedAt: number
  readonly error?: string | undefined
}

/** Counts and spend over a set of requests. @category models */
export interface Totals {
  readonly total: number
  readonly done: number
  readonly failed: number
  readonly cancelled: number
  readonly queued: number
  readonly pending: number
  readonly costUsd: number
}

/** The journal could not be read or written. @category errors */
export class JournalError extends Schema.TaggedError<JournalError>()("JournalError", {
  message: Schema.String,
}) {}

/** What a request record may change. @category models */
export type RequestPatch = Partial<Pick<RequestRecord, "state" | "channel" | "job" | "file" | "error" | "plan">> & {
  /** Added to the record's cost. */
  readonly addCostUsd?: number
  /** Count one more send. */
  readonly sent?: boolean
  /** Take back a send that never reached the upstream. */
  readonly unsent?: boolean
  /** Change the record only if it is in this state (so two runs never both record one result). */
  readonly onlyIf?: RequestState
}

/** What a job record may change. @category models */
export type JobPatch = Partial<Pick<JobRecord, "state" | "name" | "error" | "outDir">>

/**
 * The journal's interface: small on purpose, so another store (a server database) can implement it.
 * Every method is one atomic change or one consistent read.
 *
 * @category models
 */
export interface WorkJournalShape {
  /** Where it lives (a file path, a URL), for messages. */
  readonly location: string
  /** Add requests that are not journaled yet (as `pending`); existing ones are left as they are. */
  readonly add: (
    records: ReadonlyArray<{ readonly key: RequestKey; readonly request: ImageRequest; readonly plan: unknown }>,
  ) => Effect.Effect<void, JournalError>
  readonly request: (key: RequestKey) => Effect.Effect<RequestRecord | undefined, JournalError>
  /** Requests, filtered by job and/or state, in the order they were added. */
  readonly requests: (filter?: {
    readonly job?: string
    readonly states?: ReadonlyArray<RequestState>
    readonly keys?: ReadonlyArray<RequestKey>
  }) => Effect.Effect<ReadonlyArray<RequestRecord>, JournalError>
  /** Change a request; `false` when `patch.onlyIf` did not hold (or there is no such request). */
  readonly updateRequest: (key: RequestKey, patch: RequestPatch) => Effect.Effect<boolean, JournalError>
  /**
   * Journal a job **before** it is sent: the job as an `intent` and its members `queued` in it, in one
   * transaction. Only `pending` members can be claimed: when another run took one meanwhile, nothing
   * changes and the answer is `false` (the job must not be sent).
   */
  readonly openJob: (
    job: Pick<JobRecord, "key" | "displayName" | "channel" | "model" | "pipeline" | "outDir">,
    members: ReadonlyArray<RequestKey>,
  ) => Effect.Effect<boolean, JournalError>
  /** Change a job, and optionally its members that are still `queued` in it, in one transaction. */
  readonly updateJob: (key: string, patch: JobPatch, members?: RequestPatch) => Effect.Effect<void, JournalError>
  /** A job by Peel's key, its display name or the upstream's name. */
  readonly job: (reference: string) => Effect.Effect<JobRecord | undefined, JournalError>
  /** Jobs, newest first, optionally only in some states. */
  readonly jobs: (filter?: {
    readonly states?: ReadonlyArray<JobState>
  }) => Effect.Effect<ReadonlyArray<JobRecord>, JournalError>
  /**
   * Claim up to `limit` of these requests for `worker` to make in real time, in the order of `keys`,
   * as one atomic step: a request is claimable when it is `pending`, `running` under a claim that expired
   * (or that nobody holds: a run before claims), or `failed` before `failedBefore` (an earlier run's
   * failure, tried again). Claimed requests are `running`, held by `worker` until `leaseMillis` from now.
   * Two workers never claim the same request while its claim holds; a server store skips rows another
   * claim has locked instead of waiting (`FOR UPDATE SKIP LOCKED`).
   */
  readonly claim: (options: {
    readonly worker: string
    readonly keys: ReadonlyArray<RequestKey>
    readonly limit: number
    readonly leaseMillis: number
    readonly failedBefore?: number | undefined
  }) => Effect.Effect<ReadonlyArray<RequestRecord>, JournalError>
  /** Extend every claim `worker` holds on a `running` request to `leaseMillis` from now; how many. */
  readonly renew: (worker: string, leaseMillis: number) => Effect.Effect<number, JournalError>
  /** Counts and spend over these requests (all when omitted). */
  readonly totals: (keys?: ReadonlyArray<RequestKey>) => Effect.Effect<Totals, JournalError>
}

/** The current work journal. @category services */
export class WorkJournal extends Context.Service<WorkJournal, WorkJournalShape>()("@peel/core/WorkJournal") {}

/** Totals over records (what every store's `totals` computes). @category models */
export const totalsOf = (records: ReadonlyArray<Pick<RequestRecord, "state" | "costUsd">>): Totals => {
  const count = (state: RequestState) => records.filter((record) => record.state === state).length
  return {
    total: records.length,
    done: count("done"),
    failed: count("failed"),
    cancelled: count("cancelled"),
    queued: count("queued") + count("running"),
    pending: count("pending"),
    costUsd: Math.round(records.reduce((sum, record) => sum + record.costUsd, 0) * 1e6) / 1e6,
  }
}
