/**
 * Postgres for durable shared state: the connection (`@effect/sql-pg`, Effect's own Postgres driver), the
 * schema as `effect/sql` Migrator migrations (run on connect; the Migrator locks its table, so workers
 * starting together migrate once), and the rule every Postgres store follows when the server goes away:
 * **pause and retry**. A statement that fails because the server is unreachable (or a retryable conflict:
 * deadlock, serialization) is sent again with backoff until it succeeds; the caller is told once when the
 * outage starts and once when it ends. Nothing is dropped: an image is on disk before its request is
 * journaled, so the journal catches up when the server returns.
 *
 * Loaded only by dynamic import from the stores' front doors (`SpendLedger.layerPostgres`,
 * `WorkJournal.makePostgres`): a user who never chooses Postgres never loads the driver.
 *
 * Tables (all `peel_`-prefixed, so a shared database holds them beside others): `peel_requests` and
 * `peel_jobs` (the work journal, the SQLite journal's columns), `peel_budget_spend` and
 * `peel_budget_reservations` (the spend ledger, the SQLite ledger's columns), `peel_keys` (virtual keys:
 * hashes, never secrets, names unique among active keys). Times are epoch ms from the
 * server's clock, so workers on several machines agree on when a claim or a reservation expires.
 *
 * @since 0.5.0
 */
import { PgClient } from "@effect/sql-pg"
import { Cause, Effect, type Layer, Redacted, Schedule, type Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"

/** The server's clock in epoch ms, as SQL. @category sql */
export const nowMs = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

/** Statements run one at a time (the extended protocol takes one per message). */
const statements = (text: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    for (const statement of text.split(";\n").map((part) => part.trim()))
      if (statement !== "") yield* sql.unsafe(statement)
  })

const migrations = Migrator.fromRecord({
  "1_work_journal": statements(`
CREATE TABLE IF NOT EXISTS peel_requests (
  id text NOT NULL,
  hash text NOT NULL,
  seq bigserial NOT NULL,
  request text NOT NULL,
  plan text NOT NULL,
  state text NOT NULL,
  channel text,
  job text,
  file text,
  cost_usd double precision NOT NULL DEFAULT 0,
  error text,
  sends integer NOT NULL DEFAULT 0,
  updated_at bigint NOT NULL,
  worker text,
  lease_until bigint,
  PRIMARY KEY (id, hash)
);
CREATE INDEX IF NOT EXISTS peel_requests_job ON peel_requests (job);
CREATE INDEX IF NOT EXISTS peel_requests_state ON peel_requests (state);
CREATE INDEX IF NOT EXISTS peel_requests_worker ON peel_requests (worker) WHERE worker IS NOT NULL;
CREATE TABLE IF NOT EXISTS peel_jobs (
  key text PRIMARY KEY,
  seq bigserial NOT NULL,
  display_name text NOT NULL UNIQUE,
  name text,
  channel text NOT NULL,
  model text NOT NULL,
  pipeline text NOT NULL,
  out_dir text,
  state text NOT NULL,
  requests integer NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  error text
);
CREATE INDEX IF NOT EXISTS peel_jobs_name ON peel_jobs (name);
`),
  "2_spend_ledger": statements(`
CREATE TABLE IF NOT EXISTS peel_budget_spend (
  name text NOT NULL,
  window_index bigint NOT NULL,
  spent_micros bigint NOT NULL,
  PRIMARY KEY (name, window_index)
);
CREATE TABLE IF NOT EXISTS peel_budget_reservations (
  id text PRIMARY KEY,
  name text NOT NULL,
  window_index bigint NOT NULL,
  micros bigint NOT NULL,
  expires bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS peel_budget_reservations_window ON peel_budget_reservations (name, window_index);
`),
  "3_virtual_keys": statements(`
CREATE TABLE IF NOT EXISTS peel_keys (
  id text PRIMARY KEY,
  seq bigserial NOT NULL,
  name text NOT NULL,
  prefix text NOT NULL,
  hash text NOT NULL UNIQUE,
  budget_micros bigint,
  budget_window text,
  rpm integer,
  models text,
  created_at bigint NOT NULL,
  revoked_at bigint
);
CREATE UNIQUE INDEX IF NOT EXISTS peel_keys_active_name ON peel_keys (name) WHERE revoked_at IS NULL;
`),
})

/** A URL without its password (for messages: a URL may carry a secret). @category accessors */
export const describe = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `postgres://${parsed.username === "" ? "" : `${decodeURIComponent(parsed.username)}@`}${parsed.host}${parsed.pathname}`
  } catch {
    return "postgres (an unreadable URL)"
  }
}

/** Told when the server stops answering and when it answers again. @category models */
export interface Outage {
  readonly onUnreachable?: ((message: string) => void) | undefined
  readonly onReachable?: (() => void) | undefined
}

/** One connection pool to a server, with the schema migrated, for the life of the Scope. @category models */
export interface Connection {
  readonly sql: PgClient.PgClient
  /** The URL without its password. */
  readonly describe: string
  /**
   * Run one statement or transaction; while the server is unreachable (or the statement lost a
   * retryable conflict), pause and send it again. Other errors fail as they are.
   */
  readonly durable: <A, R>(effect: Effect.Effect<A, SqlError, R>) => Effect.Effect<A, SqlError, R>
}

/**
 * Worth sending again: what Effect's SQL layer calls retryable (connection lost, deadlock, serialization,
 * lock timeout), and a server that is starting or shutting down (SQLSTATE class 57: a restart), which it
 * reports as a failed connection of another kind.
 */
const retryable = (error: SqlError): boolean => {
  if (error.isRetryable) return true
  const cause = (error.reason as { readonly cause?: unknown }).cause
  const code = typeof cause === "object" && cause !== null ? (cause as { readonly code?: unknown }).code : undefined
  const text = `${error.message} ${cause instanceof Error ? cause.message : ""}`
  return (
    (typeof code === "string" && (code.startsWith("57") || code.startsWith("08"))) ||
    /failed to connect|starting up|shutting down|terminating connection|ECONNREFUSED|ECONNRESET|EPIPE/i.test(text)
  )
}

/**
 * Connect to `url` and migrate the schema. Fails when the server cannot be reached now (a clear error
 * before any work starts); an outage after that pauses the work instead ({@link Connection.durable}).
 *
 * @category constructors
 */
export const connect = (
  url: string,
  outage: Outage = {},
): Effect.Effect<Connection, SqlError | Migrator.MigrationError, Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* PgClient.make({
      url: Redacted.make(url),
      maxConnections: 8,
      connectTimeout: "10 seconds",
      applicationName: "peel",
    }).pipe(Effect.provide(Reactivity.layer))
    yield* Migrator.make({})({ loader: migrations, table: "peel_migrations" }).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
    )
    let down = false
    const durable = <A, R>(effect: Effect.Effect<A, SqlError, R>): Effect.Effect<A, SqlError, R> =>
      effect.pipe(
        Effect.tapError((error) =>
          Effect.sync(() => {
            if (!retryable(error) || down) return
            down = true
            outage.onUnreachable?.(`Postgres ${describe(url)}: ${error.message}`)
          }),
        ),
        Effect.retry({
          while: retryable,
          schedule: Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("2 seconds")]),
        }),
        Effect.tap(() =>
          Effect.sync(() => {
            if (!down) return
            down = false
            outage.onReachable?.()
          }),
        ),
      )
    return { sql, describe: describe(url), durable }
  })

/** Whether the server at `url` answers (for `peel validate`): `undefined` when it does, else why not. @category accessors */
export const check = (url: string): Effect.Effect<string | undefined> =>
  Effect.scoped(
    Effect.gen(function* () {
      const connection = yield* connect(url)
      yield* connection.sql`SELECT 1`
      return undefined
    }),
  ).pipe(
    Effect.timeout("5 seconds"),
    Effect.catchCause((cause) => {
      const error = Cause.squash(cause)
      return Effect.succeed(
        `Postgres ${describe(url)} is not reachable: ${error instanceof Error ? error.message : String(error)}`,
      )
    }),
  )

/** The pool as a Layer (`PgClient` and `SqlClient`), for code written against `effect/sql`. @category layers */
export const layer = (
  url: string,
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError | Migrator.MigrationError> =>
  PgClient.layerFrom(Effect.map(connect(url), (connection) => connection.sql))
