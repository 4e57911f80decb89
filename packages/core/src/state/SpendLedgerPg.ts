/**
 * The spend ledger in Postgres: every budget's windows shared by every worker that connects, on any
 * machine. The same tables and rules as the SQLite ledger (`SpendLedgerSqlite.ts`): reserve is one
 * transaction that locks the window's spend row (`SELECT … FOR UPDATE`), so reserves of one window are
 * serialised and a cap holds however many workers reserve at once; a reservation is a row with an expiry,
 * so one left by a dead worker stops counting when it expires.
 *
 * Time comes from the caller's `Clock` (as in every ledger; `TestClock` drives expiry in tests): workers
 * whose clocks differ by a few seconds see a reservation expire a few seconds apart, against leases of
 * minutes.
 *
 * While the server is unreachable, each operation pauses and retries (`Postgres.Connection.durable`): a
 * budget fails closed — no request starts without its reservation.
 *
 * Loaded only by dynamic import (`SpendLedger.layerPostgres`).
 */
import { randomUUID } from "node:crypto"
import { Clock, Effect, type Scope } from "effect"
import type * as Migrator from "effect/sql/Migrator"
import type { SqlError } from "effect/sql/SqlError"
import * as Postgres from "./Postgres.ts"
import type { Balance, Reservation, SpendLedgerShape, WindowKey } from "./SpendLedger.ts"

type Row = Record<string, unknown>

/**
 * A ledger over a Postgres server for the life of the Scope (tables migrated on connect).
 *
 * @category constructors
 */
export const make = (
  url: string,
  outage: Postgres.Outage = {},
): Effect.Effect<SpendLedgerShape, SqlError | Migrator.MigrationError, Scope.Scope> =>
  Effect.gen(function* () {
    const { sql, durable, describe } = yield* Postgres.connect(url, outage)
    const run = <A>(effect: Effect.Effect<A, SqlError>): Effect.Effect<A> => Effect.orDie(durable(effect))

    const balanceOf = (window: WindowKey, now: number) =>
      Effect.map(
        sql<Row>`SELECT
            COALESCE((SELECT spent_micros FROM peel_budget_spend WHERE name = ${window.budget} AND window_index = ${window.index}), 0) AS spent,
            COALESCE((SELECT SUM(micros) FROM peel_budget_reservations
                      WHERE name = ${window.budget} AND window_index = ${window.index} AND expires > ${now}), 0) AS reserved`,
        (rows): Balance => ({
          spentMicros: Number(rows[0]?.spent ?? 0),
          reservedMicros: Number(rows[0]?.reserved ?? 0),
        }),
      )

    const shape: SpendLedgerShape = {
      describe: `postgres ${describe}`,
      reserve: (window, micros, capMicros, leaseMillis) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          run(
            sql.withTransaction(
              Effect.gen(function* () {
                // the window's row, locked: reserves of one window wait for each other here
                yield* sql`INSERT INTO peel_budget_spend (name, window_index, spent_micros)
                           VALUES (${window.budget}, ${window.index}, 0) ON CONFLICT DO NOTHING`
                yield* sql`SELECT spent_micros FROM peel_budget_spend
                           WHERE name = ${window.budget} AND window_index = ${window.index} FOR UPDATE`
                // long expired (clocks of other workers may be a little behind): no longer worth a row
                yield* sql`DELETE FROM peel_budget_reservations WHERE name = ${window.budget} AND expires <= ${now - 3_600_000}`
                const balance = yield* balanceOf(window, now)
                if (balance.spentMicros + balance.reservedMicros + micros > capMicros)
                  return { _tag: "Refused", balance } as const
                const reservation: Reservation = { id: randomUUID(), window, micros, expiresAt: now + leaseMillis }
                yield* sql`INSERT INTO peel_budget_reservations (id, name, window_index, micros, expires)
                           VALUES (${reservation.id}, ${window.budget}, ${window.index}, ${micros}, ${reservation.expiresAt})`
                return reservation
              }),
            ),
          ),
        ),
      settle: (reservation, actualMicros) =>
        run(
          sql.withTransaction(
            Effect.gen(function* () {
              yield* sql`DELETE FROM peel_budget_reservations WHERE id = ${reservation.id}`
              yield* sql`INSERT INTO peel_budget_spend (name, window_index, spent_micros)
                         VALUES (${reservation.window.budget}, ${reservation.window.index}, ${actualMicros})
                         ON CONFLICT (name, window_index)
                         DO UPDATE SET spent_micros = peel_budget_spend.spent_micros + excluded.spent_micros`
            }),
          ),
        ),
      release: (reservation) =>
        run(Effect.asVoid(sql`DELETE FROM peel_budget_reservations WHERE id = ${reservation.id}`)),
      balance: (window) => Effect.flatMap(Clock.currentTimeMillis, (now) => run(balanceOf(window, now))),
    }
    return shape
  })
