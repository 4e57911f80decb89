/**
 * Virtual keys in Postgres: the same table and rules as the SQLite store (`VirtualKeysSqlite.ts`), shared
 * by every gateway replica and `peel keys` that connect. Every change is one statement; names are unique
 * among active keys by a partial unique index, so "create unless the name is taken" is one insert, and a
 * revoke is read by the next lookup on any replica. Secrets are never stored: a key is its SHA-256 and its
 * display prefix.
 *
 * While the server is unreachable, each operation pauses and retries (`Postgres.Connection.durable`).
 *
 * Loaded only by dynamic import (`State.makeVirtualKeysPostgres`).
 */
import { Clock, Effect, type Scope } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import * as Postgres from "./Postgres.ts"
import { KeyNameTaken, KeyNotFound, KeyStoreError, recordOfRow, type VirtualKeysShape } from "./VirtualKeys.ts"

type Row = Record<string, unknown>

/** The key table at `url` (migrated), for the life of the Scope. @category constructors */
export const make = (
  url: string,
  outage: Postgres.Outage = {},
): Effect.Effect<VirtualKeysShape, KeyStoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const where = Postgres.describe(url)
    const { sql, durable } = yield* Postgres.connect(url, outage).pipe(
      Effect.mapError((error) => new KeyStoreError({ message: `cannot open the keys at ${where}: ${error.message}` })),
    )
    const attempt = <A>(what: string, effect: Effect.Effect<A, SqlError>): Effect.Effect<A, KeyStoreError> =>
      durable(effect).pipe(
        Effect.mapError((error) => new KeyStoreError({ message: `${where}: cannot ${what}: ${error.message}` })),
      )
    const shape: VirtualKeysShape = {
      describe: `postgres ${where}`,
      insert: (record) => {
        const { budget, rpm, models } = record.limits
        return durable(
          sql`INSERT INTO peel_keys (id, name, prefix, hash, budget_micros, budget_window, rpm, models, created_at)
              VALUES (${record.id}, ${record.name}, ${record.prefix}, ${record.hash},
                      ${budget === undefined ? null : Math.round(budget.limitUsd * 1e6)},
                      ${budget === undefined ? null : budget.window}, ${rpm ?? null},
                      ${models === undefined ? null : JSON.stringify(models)}, ${record.createdAt})`,
        ).pipe(
          Effect.asVoid,
          Effect.mapError((error) =>
            // the partial unique index (or the hash's): another active key holds the name
            error.reason._tag === "UniqueViolation" || error.reason._tag === "ConstraintError"
              ? KeyNameTaken.of(record.name)
              : new KeyStoreError({ message: `${where}: cannot store the key: ${error.message}` }),
          ),
        )
      },
      findByHash: (hash) =>
        attempt(
          "read a key",
          Effect.map(sql<Row>`SELECT * FROM peel_keys WHERE hash = ${hash}`, (rows) =>
            rows[0] === undefined ? undefined : recordOfRow(rows[0]),
          ),
        ),
      list: attempt(
        "list the keys",
        Effect.map(sql<Row>`SELECT * FROM peel_keys ORDER BY created_at, seq`, (rows) => rows.map(recordOfRow)),
      ),
      revoke: (name) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.flatMap(
            attempt(
              "revoke a key",
              sql<Row>`UPDATE peel_keys SET revoked_at = ${now} WHERE name = ${name} AND revoked_at IS NULL RETURNING *`,
            ),
            (rows) =>
              rows[0] === undefined ? Effect.fail(KeyNotFound.of(name)) : Effect.succeed(recordOfRow(rows[0])),
          ),
        ),
      hasAny: attempt(
        "read the keys",
        Effect.map(sql<Row>`SELECT 1 AS one FROM peel_keys LIMIT 1`, (rows) => rows.length > 0),
      ),
    }
    return shape
  })
