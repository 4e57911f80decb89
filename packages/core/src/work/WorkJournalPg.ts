/**
 * The work journal in Postgres: the same records and rules as the SQLite journal (`WorkJournalSqlite.ts`),
 * shared by every worker that connects, on one machine or several. Every change is one statement or one
 * transaction; a claim is one `UPDATE … WHERE (id, hash) IN (SELECT … FOR UPDATE SKIP LOCKED)`, so
 * workers claiming at once each take different requests without waiting for each other. Times (claims,
 * `updated_at`) come from the server's clock.
 *
 * While the server is unreachable every operation pauses and retries (`Postgres.Connection.durable`): bulk
 * work waits for the journal instead of failing, and catches up when it returns.
 *
 * Loaded only by dynamic import (`WorkJournal.makePostgres`).
 */
import type { ImageRequest } from "@peel/contract/Request"
import { Effect, type Scope } from "effect"
import type { Fragment } from "effect/sql/Statement"
import * as Postgres from "../state/Postgres.ts"
import {
  type JobRecord,
  type JobState,
  JournalError,
  type RequestKey,
  type RequestPatch,
  type RequestRecord,
  type RequestState,
  totalsOf,
  type WorkJournalShape,
} from "./WorkRecords.ts"

type Row = Record<string, unknown>

const text = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)
const numberOr = (value: unknown): number | undefined =>
  value === null || value === undefined ? undefined : Number(value)

const requestOf = (row: Row): RequestRecord => ({
  id: String(row.id),
  hash: String(row.hash),
  request: JSON.parse(String(row.request)) as ImageRequest,
  plan: JSON.parse(String(row.plan)) as unknown,
  state: String(row.state) as RequestState,
  channel: text(row.channel),
  job: text(row.job),
  file: text(row.file),
  costUsd: Number(row.cost_usd),
  error: text(row.error),
  sends: Number(row.sends),
  updatedAt: Number(row.updated_at),
  worker: text(row.worker),
  leaseUntil: numberOr(row.lease_until),
})

const jobOf = (row: Row): JobRecord => ({
  key: String(row.key),
  displayName: String(row.display_name),
  name: text(row.name),
  channel: String(row.channel),
  model: String(row.model),
  pipeline: String(row.pipeline),
  outDir: text(row.out_dir),
  state: String(row.state) as JobState,
  requests: Number(row.requests),
  createdAt: Number(row.created_at),
  updatedAt: Number(row.updated_at),
  error: text(row.error),
})

/** A job's member was no longer pending: the transaction is rolled back. */
class Taken extends Error {}

/**
 * Open the Postgres journal at `url` (schema migrated) for the life of the Scope.
 *
 * @category constructors
 */
export const make = (
  url: string,
  outage: Postgres.Outage = {},
): Effect.Effect<WorkJournalShape, JournalError, Scope.Scope> =>
  Effect.gen(function* () {
    const where = Postgres.describe(url)
    const connection = yield* Postgres.connect(url, outage).pipe(
      Effect.mapError((error) => new JournalError({ message: `cannot open the journal ${where}: ${error.message}` })),
    )
    const { sql, durable } = connection
    const now = sql.literal(Postgres.nowMs)

    const attempt = <A, E extends { readonly message: string }>(
      what: string,
      effect: Effect.Effect<A, E>,
    ): Effect.Effect<A, JournalError> =>
      durable(effect as Effect.Effect<A, never>).pipe(
        Effect.mapError(
          (error: { readonly message: string }) =>
            new JournalError({ message: `journal ${where}: cannot ${what}: ${error.message}` }),
        ),
      )

    const patchRequest = (patch: RequestPatch, target: Fragment) => {
      const sets: Array<Fragment> = [sql`updated_at = ${now}`]
      if (patch.state !== undefined) sets.push(sql`state = ${patch.state}`)
      if (patch.state !== undefined && patch.state !== "running") sets.push(sql`worker = NULL, lease_until = NULL`)
      if (patch.channel !== undefined) sets.push(sql`channel = ${patch.channel}`)
      if (patch.job !== undefined) sets.push(sql`job = ${patch.job}`)
      if (patch.file !== undefined) sets.push(sql`file = ${patch.file}`)
      if (patch.error !== undefined) sets.push(sql`error = ${patch.error}`)
      if (patch.plan !== undefined) sets.push(sql`plan = ${JSON.stringify(patch.plan)}`)
      if (patch.addCostUsd !== undefined && patch.addCostUsd !== 0)
        sets.push(sql`cost_usd = cost_usd + ${patch.addCostUsd}::double precision`)
      if (patch.sent === true) sets.push(sql`sends = sends + 1`)
      if (patch.unsent === true) sets.push(sql`sends = GREATEST(0, sends - 1)`)
      const condition = patch.onlyIf === undefined ? sql`` : sql` AND state = ${patch.onlyIf}`
      return sql<Row>`UPDATE peel_requests SET ${sql.csv(sets)} WHERE ${target}${condition} RETURNING id`
    }

    const selectRequests = (filter: { readonly job?: string; readonly states?: ReadonlyArray<RequestState> }) => {
      const clauses: Array<Fragment> = []
      if (filter.job !== undefined) clauses.push(sql`job = ${filter.job}`)
      if (filter.states !== undefined) clauses.push(sql.in("state", filter.states))
      return sql<Row>`SELECT * FROM peel_requests${clauses.length === 0 ? sql`` : sql` WHERE ${sql.and(clauses)}`} ORDER BY seq`
    }

    /** The keys as a table with their position: `k(id, hash, ord)`. */
    const keyTable = (keys: ReadonlyArray<RequestKey>) =>
      sql`(VALUES ${sql.csv(keys.map((key, index) => sql`(${key.id}::text, ${key.hash}::text, ${index}::int)`))}) AS k(id, hash, ord)`

    const shape: WorkJournalShape = {
      location: where,
      add: (records) =>
        records.length === 0
          ? Effect.void
          : attempt(
              "add requests",
              sql.withTransaction(
                Effect.forEach(
                  records,
                  (record) =>
                    sql`INSERT INTO peel_requests (id, hash, request, plan, state, updated_at)
                        VALUES (${record.key.id}, ${record.key.hash}, ${JSON.stringify(record.request)},
                                ${JSON.stringify(record.plan ?? null)}, 'pending', ${now})
                        ON CONFLICT (id, hash) DO NOTHING`,
                  { discard: true },
                ),
              ),
            ),
      request: (key) =>
        attempt(
          "read a request",
          Effect.map(sql<Row>`SELECT * FROM peel_requests WHERE id = ${key.id} AND hash = ${key.hash}`, (rows) =>
            rows[0] === undefined ? undefined : requestOf(rows[0]),
          ),
        ),
      requests: (filter = {}) => {
        if (filter.states !== undefined && filter.states.length === 0) return Effect.succeed([])
        return attempt(
          "read requests",
          Effect.map(selectRequests(filter), (rows) => {
            const records = rows.map(requestOf)
            if (filter.keys === undefined) return records
            const wanted = new Set(filter.keys.map((key) => `${key.id}\u0000${key.hash}`))
            return records.filter((record) => wanted.has(`${record.id}\u0000${record.hash}`))
          }),
        )
      },
      updateRequest: (key, patch) =>
        attempt(
          "update a request",
          Effect.map(patchRequest(patch, sql`id = ${key.id} AND hash = ${key.hash}`), (rows) => rows.length > 0),
        ),
      openJob: (job, members) =>
        attempt(
          "journal a job",
          sql
            .withTransaction(
              Effect.gen(function* () {
                yield* sql`INSERT INTO peel_jobs (key, display_name, channel, model, pipeline, out_dir, state, requests, created_at, updated_at)
                  VALUES (${job.key}, ${job.displayName}, ${job.channel}, ${job.model}, ${job.pipeline},
                          ${job.outDir ?? null}, 'intent', ${members.length}, ${now}, ${now})`
                for (const member of members) {
                  const claimed = yield* sql<Row>`UPDATE peel_requests
                    SET state = 'queued', job = ${job.key}, channel = ${job.channel}, sends = sends + 1,
                        worker = NULL, lease_until = NULL, updated_at = ${now}
                    WHERE id = ${member.id} AND hash = ${member.hash} AND state = 'pending' RETURNING id`
                  // Another run (or worker) took this request since it was read: send nothing, change nothing.
                  if (claimed.length !== 1) return yield* Effect.die(new Taken())
                }
                return true
              }),
            )
            .pipe(
              Effect.catchDefect((defect) => (defect instanceof Taken ? Effect.succeed(false) : Effect.die(defect))),
            ),
        ),
      updateJob: (key, patch, members) =>
        attempt(
          "update a job",
          sql.withTransaction(
            Effect.gen(function* () {
              const sets: Array<Fragment> = [sql`updated_at = ${now}`]
              if (patch.state !== undefined) sets.push(sql`state = ${patch.state}`)
              if (patch.name !== undefined) sets.push(sql`name = ${patch.name}`)
              if (patch.error !== undefined) sets.push(sql`error = ${patch.error}`)
              if (patch.outDir !== undefined) sets.push(sql`out_dir = ${patch.outDir}`)
              yield* sql`UPDATE peel_jobs SET ${sql.csv(sets)} WHERE key = ${key}`
              if (members !== undefined) yield* patchRequest(members, sql`job = ${key} AND state = 'queued'`)
            }),
          ),
        ),
      job: (reference) =>
        attempt(
          "read a job",
          Effect.map(
            sql<Row>`SELECT * FROM peel_jobs WHERE key = ${reference} OR display_name = ${reference} OR name = ${reference}
                     ORDER BY created_at DESC, seq DESC LIMIT 1`,
            (rows) => (rows[0] === undefined ? undefined : jobOf(rows[0])),
          ),
        ),
      jobs: (filter = {}) => {
        const states = filter.states
        if (states !== undefined && states.length === 0) return Effect.succeed([])
        return attempt(
          "read jobs",
          Effect.map(
            sql<Row>`SELECT * FROM peel_jobs${states === undefined ? sql`` : sql` WHERE ${sql.in("state", states)}`}
                     ORDER BY created_at DESC, seq DESC`,
            (rows) => rows.map(jobOf),
          ),
        )
      },
      claim: ({ worker, keys, limit, leaseMillis, failedBefore }) => {
        if (keys.length === 0 || limit <= 0) return Effect.succeed([])
        const order = new Map(keys.map((key, index) => [`${key.id}\u0000${key.hash}`, index]))
        return attempt(
          "claim requests",
          Effect.map(
            sql<Row>`UPDATE peel_requests SET state = 'running', worker = ${worker},
                       lease_until = ${now} + ${leaseMillis}::bigint, updated_at = ${now}
                     WHERE (id, hash) IN (
                       SELECT r.id, r.hash FROM peel_requests r JOIN ${keyTable(keys)}
                         ON r.id = k.id AND r.hash = k.hash
                       WHERE r.state = 'pending'
                          OR (r.state = 'running' AND (r.lease_until IS NULL OR r.lease_until <= ${now}))
                          OR (r.state = 'failed' AND r.updated_at < ${failedBefore ?? 0}::bigint)
                       ORDER BY k.ord
                       LIMIT ${limit}
                       FOR UPDATE OF r SKIP LOCKED)
                     RETURNING *`,
            (rows) =>
              rows
                .map(requestOf)
                .sort(
                  (a, b) => (order.get(`${a.id}\u0000${a.hash}`) ?? 0) - (order.get(`${b.id}\u0000${b.hash}`) ?? 0),
                ),
          ),
        )
      },
      renew: (worker, leaseMillis) =>
        attempt(
          "renew claims",
          Effect.map(
            sql<Row>`UPDATE peel_requests SET lease_until = ${now} + ${leaseMillis}::bigint
                     WHERE worker = ${worker} AND state = 'running' RETURNING id`,
            (rows) => rows.length,
          ),
        ),
      totals: (keys) => Effect.map(shape.requests(keys === undefined ? {} : { keys }), (records) => totalsOf(records)),
    }
    return shape
  })
