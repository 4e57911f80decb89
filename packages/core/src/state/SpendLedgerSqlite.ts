/**
 * The spend ledger in a SQLite file (`node:sqlite`): the second implementation of
 * {@link SpendLedger.SpendLedgerShape}, kept apart so that the memory Layer does not load SQLite.
 *
 * @since 0.4.0
 */
import { randomUUID } from "node:crypto"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { Effect, Layer, type Scope } from "effect"
import {
  type Balance,
  type Book,
  fromBook,
  type Reservation,
  SpendLedger,
  type SpendLedgerShape,
  type WindowKey,
} from "./SpendLedger.ts"

/**
 * A book in a SQLite file (`node:sqlite`): survives restarts, and processes sharing the file share every
 * cap (WAL mode, `BEGIN IMMEDIATE` around check-and-reserve, a 10 s busy timeout). The tables are the
 * ones the budget's file store has always used, so a file written by an earlier version keeps its spend.
 *
 * @category constructors
 */
export const book = (path: string): Book => {
  mkdirSync(dirname(path), { recursive: true })
  const db = new DatabaseSync(path)
  db.exec("PRAGMA busy_timeout = 10000")
  db.exec("PRAGMA journal_mode = WAL")
  db.exec(`CREATE TABLE IF NOT EXISTS peel_budget_spend (
    name TEXT NOT NULL, window INTEGER NOT NULL, spent_micros INTEGER NOT NULL, PRIMARY KEY (name, window))`)
  db.exec(`CREATE TABLE IF NOT EXISTS peel_budget_reservations (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, window INTEGER NOT NULL, micros INTEGER NOT NULL, expires INTEGER NOT NULL)`)
  const spentOf = db.prepare("SELECT spent_micros AS spent FROM peel_budget_spend WHERE name = ? AND window = ?")
  const reservedOf = db.prepare(
    "SELECT COALESCE(SUM(micros), 0) AS reserved FROM peel_budget_reservations WHERE name = ? AND window = ? AND expires > ?",
  )
  const dropExpired = db.prepare("DELETE FROM peel_budget_reservations WHERE name = ? AND expires <= ?")
  const insert = db.prepare(
    "INSERT INTO peel_budget_reservations (id, name, window, micros, expires) VALUES (?, ?, ?, ?, ?)",
  )
  const remove = db.prepare("DELETE FROM peel_budget_reservations WHERE id = ?")
  const addSpend = db.prepare(
    `INSERT INTO peel_budget_spend (name, window, spent_micros) VALUES (?, ?, ?)
     ON CONFLICT (name, window) DO UPDATE SET spent_micros = spent_micros + excluded.spent_micros`,
  )
  const transaction = <A>(body: () => A): A => {
    db.exec("BEGIN IMMEDIATE")
    try {
      const result = body()
      db.exec("COMMIT")
      return result
    } catch (error) {
      db.exec("ROLLBACK")
      throw error
    }
  }
  const balanceOf = (window: WindowKey, now: number): Balance => ({
    spentMicros: Number((spentOf.get(window.budget, window.index) as { spent?: number } | undefined)?.spent ?? 0),
    reservedMicros: Number((reservedOf.get(window.budget, window.index, now) as { reserved: number }).reserved),
  })
  let open = true
  return {
    describe: `sqlite ${path}`,
    reserve: (window, micros, capMicros, now, leaseMillis) =>
      transaction(() => {
        dropExpired.run(window.budget, now)
        const balance = balanceOf(window, now)
        if (balance.spentMicros + balance.reservedMicros + micros > capMicros)
          return { _tag: "Refused", balance } as const
        const reservation: Reservation = { id: randomUUID(), window, micros, expiresAt: now + leaseMillis }
        insert.run(reservation.id, window.budget, window.index, micros, reservation.expiresAt)
        return reservation
      }),
    settle: (reservation, actualMicros) =>
      transaction(() => {
        remove.run(reservation.id)
        addSpend.run(reservation.window.budget, reservation.window.index, actualMicros)
      }),
    release: (reservation) => {
      remove.run(reservation.id)
    },
    balance: balanceOf,
    close: () => {
      if (open) db.close()
      open = false
    },
  }
}

/** A ledger in a SQLite file for the life of the Scope. @category constructors */
export const make = (path: string): Effect.Effect<SpendLedgerShape, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => book(path)),
      (book) => Effect.sync(() => book.close()),
    ),
    fromBook,
  )

/** Every budget's ledger in one SQLite file, shared by the processes that open it. @category layers */
export const layer = (path: string): Layer.Layer<SpendLedger> => Layer.effect(SpendLedger, make(path))
