/**
 * The embedded work journal: SQLite through Node's built-in `node:sqlite` (`DatabaseSync`). WAL mode with
 * `synchronous=FULL` (a committed change survives `kill -9` and power loss), a busy timeout so two
 * processes sharing a state folder wait for each other instead of failing, and every change in one
 * transaction.
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { DatabaseSync, type SQLInputValue } from "node:sqlite"
import type { ImageRequest } from "@peel/contract/Request"
import { Effect } from "effect"
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

const schema = `
CREATE TABLE IF NOT EXISTS requests (
  id TEXT NOT NULL,
  hash TEXT NOT NULL,
  seq INTEGER NOT NULL,
  request TEXT NOT NULL,
  plan TEXT NOT NULL,
  state TEXT NOT NULL,
  channel TEXT,
  job TEXT,
  file TEXT,
  cost_usd REAL NOT NULL DEFAULT 0,
  error TEXT,
  sends INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  worker TEXT,
  lease_until INTEGER,
  PRIMARY KEY (id, hash)
);
CREATE INDEX IF NOT EXISTS requests_job ON requests (job);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state);
CREATE TABLE IF NOT EXISTS jobs (
  key TEXT PRIMARY KEY,
  display_name TEXT NOT NULL UNIQUE,
  name TEXT,
  channel TEXT NOT NULL,
  model TEXT NOT NULL,
  pipeline TEXT NOT NULL,
  out_dir TEXT,
  state TEXT NOT NULL,
  requests INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_name ON jobs (name);
`

type Row = Record<string, SQLInputValue>

/** A job's member was no longer pending: the transaction is rolled back. */
class Taken extends Error {}

const text = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)

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
  leaseUntil: row.lease_until === null || row.lease_until === undefined ? undefined : Number(row.lease_until),
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

/** Open the journal file (its folder created); `close` releases it. */
export const open = (path: string): { readonly shape: WorkJournalShape; readonly close: () => void } => {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true })
  const db = new DatabaseSync(path, { timeout: 10_000 })
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
  db.exec(schema)
  // a journal written before claims: add their columns
  const columns = (db.prepare("PRAGMA table_info(requests)").all() as Array<Row>).map((row) => String(row.name))
  if (!columns.includes("worker")) db.exec("ALTER TABLE requests ADD COLUMN worker TEXT")
  if (!columns.includes("lease_until")) db.exec("ALTER TABLE requests ADD COLUMN lease_until INTEGER")

  const attempt = <A>(what: string, run: () => A): Effect.Effect<A, JournalError> =>
    Effect.try({
      try: run,
      catch: (error) =>
        new JournalError({
          message: `journal ${path}: cannot ${what}: ${error instanceof Error ? error.message : String(error)}`,
        }),
    })

  const transaction = <A>(run: () => A): A => {
    db.exec("BEGIN IMMEDIATE")
    try {
      const result = run()
      db.exec("COMMIT")
      return result
    } catch (error) {
      db.exec("ROLLBACK")
      throw error
    }
  }

  const patchRequest = (key: RequestKey, patch: RequestPatch, now: number, onlyJob?: string): boolean => {
    const sets: Array<string> = ["updated_at = ?"]
    const values: Array<SQLInputValue> = [now]
    const set = (column: string, value: SQLInputValue) => {
      sets.push(`${column} = ?`)
      values.push(value)
    }
    if (patch.state !== undefined) set("state", patch.state)
    // a claim holds only while the request runs
    if (patch.state !== undefined && patch.state !== "running") sets.push("worker = NULL", "lease_until = NULL")
    if (patch.channel !== undefined) set("channel", patch.channel)
    if (patch.job !== undefined) set("job", patch.job)
    if (patch.file !== undefined) set("file", patch.file)
    if (patch.error !== undefined) set("error", patch.error)
    if (patch.plan !== undefined) set("plan", JSON.stringify(patch.plan))
    if (patch.addCostUsd !== undefined && patch.addCostUsd !== 0) {
      sets.push("cost_usd = cost_usd + ?")
      values.push(patch.addCostUsd)
    }
    if (patch.sent === true) sets.push("sends = sends + 1")
    if (patch.unsent === true) sets.push("sends = MAX(0, sends - 1)")
    const where = onlyJob === undefined ? "id = ? AND hash = ?" : "job = ? AND state = 'queued'"
    const whereValues: Array<SQLInputValue> = onlyJob === undefined ? [key.id, key.hash] : [onlyJob]
    const condition = patch.onlyIf === undefined ? "" : " AND state = ?"
    if (patch.onlyIf !== undefined) whereValues.push(patch.onlyIf)
    const changed = db
      .prepare(`UPDATE requests SET ${sets.join(", ")} WHERE ${where}${condition}`)
      .run(...values, ...whereValues)
    return Number(changed.changes) > 0
  }

  let seq = Number((db.prepare("SELECT COALESCE(MAX(seq), 0) AS seq FROM requests").get() as Row).seq)

  const shape: WorkJournalShape = {
    location: path,
    add: (records) =>
      attempt("add requests", () => {
        const now = Date.now()
        const insert = db.prepare(
          "INSERT OR IGNORE INTO requests (id, hash, seq, request, plan, state, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
        )
        transaction(() => {
          for (const record of records)
            insert.run(
              record.key.id,
              record.key.hash,
              ++seq,
              JSON.stringify(record.request),
              JSON.stringify(record.plan ?? null),
              now,
            )
        })
      }),
    request: (key) =>
      attempt("read a request", () => {
        const row = db.prepare("SELECT * FROM requests WHERE id = ? AND hash = ?").get(key.id, key.hash) as
          | Row
          | undefined
        return row === undefined ? undefined : requestOf(row)
      }),
    requests: (filter = {}) =>
      attempt("read requests", () => {
        const where: Array<string> = []
        const values: Array<SQLInputValue> = []
        if (filter.job !== undefined) {
          where.push("job = ?")
          values.push(filter.job)
        }
        if (filter.states !== undefined) {
          if (filter.states.length === 0) return []
          where.push(`state IN (${filter.states.map(() => "?").join(", ")})`)
          values.push(...filter.states)
        }
        const rows = db
          .prepare(`SELECT * FROM requests${where.length === 0 ? "" : ` WHERE ${where.join(" AND ")}`} ORDER BY seq`)
          .all(...values) as Array<Row>
        const records = rows.map(requestOf)
        if (filter.keys === undefined) return records
        const wanted = new Set(filter.keys.map((key) => `${key.id}\u0000${key.hash}`))
        return records.filter((record) => wanted.has(`${record.id}\u0000${record.hash}`))
      }),
    updateRequest: (key, patch) => attempt("update a request", () => patchRequest(key, patch, Date.now())),
    openJob: (job, members) =>
      attempt("journal a job", () => {
        const now = Date.now()
        try {
          transaction(() => {
            db.prepare(
              "INSERT INTO jobs (key, display_name, channel, model, pipeline, out_dir, state, requests, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'intent', ?, ?, ?)",
            ).run(
              job.key,
              job.displayName,
              job.channel,
              job.model,
              job.pipeline,
              job.outDir ?? null,
              members.length,
              now,
              now,
            )
            const claim = db.prepare(
              "UPDATE requests SET state = 'queued', job = ?, channel = ?, sends = sends + 1, updated_at = ? WHERE id = ? AND hash = ? AND state = 'pending'",
            )
            for (const member of members) {
              const changed = Number(claim.run(job.key, job.channel, now, member.id, member.hash).changes)
              // Another run (or process) took this request since it was read: send nothing, change nothing.
              if (changed !== 1) throw new Taken()
            }
          })
          return true
        } catch (error) {
          if (error instanceof Taken) return false
          throw error
        }
      }),
    updateJob: (key, patch, members) =>
      attempt("update a job", () => {
        const now = Date.now()
        transaction(() => {
          const sets: Array<string> = ["updated_at = ?"]
          const values: Array<SQLInputValue> = [now]
          if (patch.state !== undefined) {
            sets.push("state = ?")
            values.push(patch.state)
          }
          if (patch.name !== undefined) {
            sets.push("name = ?")
            values.push(patch.name)
          }
          if (patch.error !== undefined) {
            sets.push("error = ?")
            values.push(patch.error)
          }
          if (patch.outDir !== undefined) {
            sets.push("out_dir = ?")
            values.push(patch.outDir)
          }
          db.prepare(`UPDATE jobs SET ${sets.join(", ")} WHERE key = ?`).run(...values, key)
          if (members !== undefined) patchRequest({ id: "", hash: "" }, members, now, key)
        })
      }),
    job: (reference) =>
      attempt("read a job", () => {
        const row = db
          .prepare("SELECT * FROM jobs WHERE key = ? OR display_name = ? OR name = ? ORDER BY created_at DESC LIMIT 1")
          .get(reference, reference, reference) as Row | undefined
        return row === undefined ? undefined : jobOf(row)
      }),
    jobs: (filter = {}) =>
      attempt("read jobs", () => {
        const states = filter.states
        if (states !== undefined && states.length === 0) return []
        const rows = (
          states === undefined
            ? db.prepare("SELECT * FROM jobs ORDER BY created_at DESC, rowid DESC").all()
            : db
                .prepare(
                  `SELECT * FROM jobs WHERE state IN (${states.map(() => "?").join(", ")}) ORDER BY created_at DESC, rowid DESC`,
                )
                .all(...states)
        ) as Array<Row>
        return rows.map(jobOf)
      }),
    claim: ({ worker, keys, limit, leaseMillis, failedBefore }) =>
      attempt("claim requests", () => {
        if (keys.length === 0 || limit <= 0) return []
        const now = Date.now()
        const find = db.prepare(
          `SELECT * FROM requests WHERE id = ? AND hash = ? AND (state = 'pending'
             OR (state = 'running' AND (lease_until IS NULL OR lease_until <= ?))
             OR (state = 'failed' AND updated_at < ?))`,
        )
        const take = db.prepare(
          "UPDATE requests SET state = 'running', worker = ?, lease_until = ?, updated_at = ? WHERE id = ? AND hash = ?",
        )
        return transaction(() => {
          const claimed: Array<RequestRecord> = []
          for (const key of keys) {
            if (claimed.length >= limit) break
            const row = find.get(key.id, key.hash, now, failedBefore ?? 0) as Row | undefined
            if (row === undefined) continue
            take.run(worker, now + leaseMillis, now, key.id, key.hash)
            claimed.push(
              requestOf({ ...row, state: "running", worker, lease_until: now + leaseMillis, updated_at: now }),
            )
          }
          return claimed
        })
      }),
    renew: (worker, leaseMillis) =>
      attempt("renew claims", () => {
        const now = Date.now()
        return Number(
          db
            .prepare("UPDATE requests SET lease_until = ? WHERE worker = ? AND state = 'running'")
            .run(now + leaseMillis, worker).changes,
        )
      }),
    // Only the columns totals need: a bulk run's end must not parse every request's and plan's JSON.
    totals: (keys) =>
      attempt("count requests", () => {
        const rows = db.prepare("SELECT id, hash, state, cost_usd FROM requests ORDER BY seq").all() as Array<Row>
        const wanted = keys === undefined ? undefined : new Set(keys.map((key) => `${key.id}\u0000${key.hash}`))
        return totalsOf(
          rows
            .filter((row) => wanted === undefined || wanted.has(`${String(row.id)}\u0000${String(row.hash)}`))
            .map((row) => ({ state: String(row.state) as RequestState, costUsd: Number(row.cost_usd) })),
        )
      }),
  }
  return { shape, close: () => db.close() }
}
