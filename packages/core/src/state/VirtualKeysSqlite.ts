/**
 * Virtual keys in a SQLite file (`node:sqlite`): the embedded implementation of
 * {@link VirtualKeys.VirtualKeysShape}, kept apart so that the memory Layer does not load SQLite. By default
 * the table lives in the state folder's journal file (`<state>/journal.sqlite`, beside the work journal and
 * the key spend ledger), so `peel keys` and a running `peel serve` on the same folder share it: WAL mode, a
 * 10 s busy timeout, every change one statement (atomic on its own). Names are unique among active keys by
 * a partial unique index, which makes "create unless the name is taken" one insert, even between
 * processes.
 *
 * @since 0.5.0
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { DatabaseSync, type SQLInputValue } from "node:sqlite"
import { Clock, Effect, Layer, type Scope } from "effect"
import {
  KeyNameTaken,
  KeyNotFound,
  KeyStoreError,
  recordOfRow,
  VirtualKeys,
  type VirtualKeysShape,
} from "./VirtualKeys.ts"

const schema = `
CREATE TABLE IF NOT EXISTS peel_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  budget_micros INTEGER,
  budget_window TEXT,
  rpm INTEGER,
  models TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS peel_keys_active_name ON peel_keys (name) WHERE revoked_at IS NULL;
`

type Row = Record<string, SQLInputValue>

/** Open (creating if need be) the key table in the SQLite file at `path`; `close` releases it. @category constructors */
export const open = (path: string): { readonly shape: VirtualKeysShape; readonly close: () => void } => {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true })
  const db = new DatabaseSync(path, { timeout: 10_000 })
  db.exec("PRAGMA journal_mode = WAL")
  db.exec(schema)
  const insert = db.prepare(
    `INSERT INTO peel_keys (id, name, prefix, hash, budget_micros, budget_window, rpm, models, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
  const byHash = db.prepare("SELECT * FROM peel_keys WHERE hash = ?")
  const all = db.prepare("SELECT * FROM peel_keys ORDER BY created_at, rowid")
  const revoke = db.prepare("UPDATE peel_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL RETURNING *")
  const any = db.prepare("SELECT 1 AS one FROM peel_keys LIMIT 1")

  const attempt = <A>(what: string, run: () => A): Effect.Effect<A, KeyStoreError> =>
    Effect.try({
      try: run,
      catch: (error) =>
        new KeyStoreError({
          message: `${path}: cannot ${what}: ${error instanceof Error ? error.message : String(error)}`,
        }),
    })

  const shape: VirtualKeysShape = {
    describe: `sqlite ${path}`,
    insert: (record) =>
      Effect.suspend((): Effect.Effect<void, KeyNameTaken | KeyStoreError> => {
        try {
          const { budget, rpm, models } = record.limits
          insert.run(
            record.id,
            record.name,
            record.prefix,
            record.hash,
            budget === undefined ? null : Math.round(budget.limitUsd * 1e6),
            budget === undefined ? null : budget.window,
            rpm ?? null,
            models === undefined ? null : JSON.stringify(models),
            record.createdAt,
          )
          return Effect.void
        } catch (error) {
          // The partial unique index (or the hash's): another active key holds the name.
          if (error instanceof Error && /UNIQUE constraint failed/.test(error.message))
            return Effect.fail(KeyNameTaken.of(record.name))
          return Effect.fail(
            new KeyStoreError({
              message: `${path}: cannot store the key: ${error instanceof Error ? error.message : String(error)}`,
            }),
          )
        }
      }),
    findByHash: (hash) =>
      attempt("read a key", () => {
        const row = byHash.get(hash) as Row | undefined
        return row === undefined ? undefined : recordOfRow(row)
      }),
    list: attempt("list the keys", () => (all.all() as Array<Row>).map(recordOfRow)),
    revoke: (name) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.flatMap(
          attempt("revoke a key", () => revoke.get(now, name) as Row | undefined),
          (row) => (row === undefined ? Effect.fail(KeyNotFound.of(name)) : Effect.succeed(recordOfRow(row))),
        ),
      ),
    hasAny: attempt("read the keys", () => any.get() !== undefined),
  }
  let closed = false
  return {
    shape,
    close: () => {
      if (!closed) db.close()
      closed = true
    },
  }
}

/** The key table in the SQLite file at `path`, for the life of the Scope. @category constructors */
export const make = (path: string): Effect.Effect<VirtualKeysShape, KeyStoreError, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.try({
        try: () => open(path),
        catch: (error) =>
          new KeyStoreError({
            message: `cannot open ${path}: ${error instanceof Error ? error.message : String(error)}`,
          }),
      }),
      (store) => Effect.sync(() => store.close()),
    ),
    (store) => store.shape,
  )

/** @category layers */
export const layer = (path: string): Layer.Layer<VirtualKeys, KeyStoreError> => Layer.effect(VirtualKeys, make(path))
