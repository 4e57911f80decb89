/**
 * A second implementation of the attempt-level state services, over ONE SQLite file (test code): what a
 * network store does, in miniature — every operation is one `BEGIN IMMEDIATE` transaction applying the
 * same rule as the memory Layer, so two independent instances opened on the same file (two "processes")
 * share state, and leases are the only way a slot is held. Used by the contract suite and the
 * shared-state tests.
 */
import { DatabaseSync } from "node:sqlite"
import { Clock, Context, Effect, Layer } from "effect"
import * as ChannelStats from "../../src/state/ChannelStats.ts"
import * as Concurrency from "../../src/state/Concurrency.ts"
import * as HedgeBudget from "../../src/state/HedgeBudget.ts"
import * as QuotaPauses from "../../src/state/QuotaPauses.ts"
import * as RateLimits from "../../src/state/RateLimits.ts"

/** The services this store implements. */
export type SqliteServices =
  | RateLimits.RateLimits
  | QuotaPauses.QuotaPauses
  | Concurrency.Concurrency
  | HedgeBudget.HedgeBudget
  | ChannelStats.ChannelStats

/** How often a waiter polls for a free concurrency slot (a network store would also poll or block). */
const pollMillis = 25

const open = (file: string) => {
  const db = new DatabaseSync(file, { timeout: 10_000 })
  db.exec(`
    PRAGMA journal_mode = WAL;
    CREATE TABLE IF NOT EXISTS rate_starts (key TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS rate_starts_key ON rate_starts (key, at);
    CREATE TABLE IF NOT EXISTS pauses (key TEXT PRIMARY KEY, until INTEGER NOT NULL, since INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS slots (key TEXT NOT NULL, id TEXT NOT NULL, until INTEGER NOT NULL, PRIMARY KEY (key, id));
    CREATE TABLE IF NOT EXISTS hedge_events (key TEXT NOT NULL, kind TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, summary TEXT NOT NULL);
  `)
  return db
}

/** Run `body` in one write transaction: atomic against every other connection to the file. */
const atomically = <A>(db: DatabaseSync, body: () => A): A => {
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

/** The state services over the SQLite file `file` (created if need be); closed with the Layer's scope. */
export const layer = (file: string): Layer.Layer<SqliteServices> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const db = yield* Effect.acquireRelease(
        Effect.sync(() => open(file)),
        (db) => Effect.sync(() => db.close()),
      )
      const now = Clock.currentTimeMillis
      const inTransaction = <A>(body: (now: number) => A) =>
        Effect.flatMap(now, (time) => Effect.sync(() => atomically(db, () => body(time))))

      const rateLimits: RateLimits.RateLimitsShape = {
        acquire: (key, limit, windowMillis) =>
          inTransaction((time) => {
            db.prepare("DELETE FROM rate_starts WHERE key = ? AND at <= ?").run(key, time - windowMillis)
            const log = db
              .prepare("SELECT at FROM rate_starts WHERE key = ? ORDER BY at")
              .all(key)
              .map((row) => Number(row.at))
            const at = RateLimits.nextStart(log, time, limit, windowMillis)
            if (Number.isFinite(at)) db.prepare("INSERT INTO rate_starts (key, at) VALUES (?, ?)").run(key, at)
            return at - time
          }),
        tryAcquire: (key, limit, windowMillis) =>
          inTransaction((time) => {
            db.prepare("DELETE FROM rate_starts WHERE key = ? AND at <= ?").run(key, time - windowMillis)
            const log = db
              .prepare("SELECT at FROM rate_starts WHERE key = ? ORDER BY at")
              .all(key)
              .map((row) => Number(row.at))
            const at = RateLimits.nextStart(log, time, limit, windowMillis)
            if (at === time) db.prepare("INSERT INTO rate_starts (key, at) VALUES (?, ?)").run(key, at)
            return at - time
          }),
      }

      const livePause = (key: string, time: number): QuotaPauses.Pause | undefined => {
        db.prepare("DELETE FROM pauses WHERE key = ? AND until <= ?").run(key, time)
        const row = db.prepare("SELECT until, since FROM pauses WHERE key = ?").get(key)
        return row === undefined ? undefined : { until: Number(row.until), since: Number(row.since) }
      }
      const quotaPauses: QuotaPauses.QuotaPausesShape = {
        pausedUntil: (key) => inTransaction((time) => livePause(key, time)?.until ?? 0),
        pause: (key, { until, sentAt }) =>
          inTransaction((time) => {
            const current = livePause(key, time)
            const next = QuotaPauses.nextPause(current, time, sentAt, until)
            if (next !== undefined)
              db.prepare("INSERT OR REPLACE INTO pauses (key, until, since) VALUES (?, ?, ?)").run(
                key,
                next.until,
                next.since,
              )
            return (next ?? current)?.until ?? 0
          }),
      }

      const held = (key: string, time: number): number => {
        db.prepare("DELETE FROM slots WHERE key = ? AND until <= ?").run(key, time)
        return Number(db.prepare("SELECT COUNT(*) AS n FROM slots WHERE key = ?").get(key)!.n)
      }
      const tryTake = (key: string, limit: number, leaseMillis: number) =>
        inTransaction((time): Concurrency.Lease | undefined => {
          if (held(key, time) >= limit) return undefined
          const id = Concurrency.slotId()
          db.prepare("INSERT INTO slots (key, id, until) VALUES (?, ?, ?)").run(key, id, time + leaseMillis)
          return { key, id }
        })
      const acquire = (key: string, limit: number, leaseMillis: number): Effect.Effect<Concurrency.Lease> =>
        Effect.flatMap(tryTake(key, limit, leaseMillis), (lease) =>
          lease !== undefined
            ? Effect.succeed(lease)
            : Effect.sleep(pollMillis).pipe(Effect.andThen(Effect.suspend(() => acquire(key, limit, leaseMillis)))),
        )
      const concurrency: Concurrency.ConcurrencyShape = {
        acquire,
        renew: (lease, leaseMillis) =>
          inTransaction((time) => {
            held(lease.key, time)
            const changed = db
              .prepare("UPDATE slots SET until = ? WHERE key = ? AND id = ?")
              .run(time + leaseMillis, lease.key, lease.id)
            return Number(changed.changes) > 0
          }),
        release: (lease) =>
          inTransaction(() => {
            db.prepare("DELETE FROM slots WHERE key = ? AND id = ?").run(lease.key, lease.id)
          }),
        inUse: (key) => inTransaction((time) => held(key, time)),
      }

      const count = (key: string, kind: string) =>
        Number(db.prepare("SELECT COUNT(*) AS n FROM hedge_events WHERE key = ? AND kind = ?").get(key, kind)!.n)
      const hedgeBudget: HedgeBudget.HedgeBudgetShape = {
        recordCall: (key, windowMillis) =>
          inTransaction((time) => {
            db.prepare("DELETE FROM hedge_events WHERE key = ? AND at < ?").run(key, time - windowMillis)
            db.prepare("INSERT INTO hedge_events (key, kind, at) VALUES (?, 'call', ?)").run(key, time)
          }),
        tryHedge: (key, share, windowMillis) =>
          inTransaction((time) => {
            db.prepare("DELETE FROM hedge_events WHERE key = ? AND at < ?").run(key, time - windowMillis)
            if (!HedgeBudget.allows(count(key, "call"), count(key, "hedge"), share)) return false
            db.prepare("INSERT INTO hedge_events (key, kind, at) VALUES (?, 'hedge', ?)").run(key, time)
            return true
          }),
      }

      const summaryOf = (key: string): ChannelStats.Summary | undefined => {
        const row = db.prepare("SELECT summary FROM stats WHERE key = ?").get(key)
        return row === undefined ? undefined : (JSON.parse(String(row.summary)) as ChannelStats.Summary)
      }
      const channelStats: ChannelStats.ChannelStatsShape = {
        record: (key, sample) =>
          inTransaction(() => {
            const next = ChannelStats.fold(summaryOf(key), sample)
            db.prepare("INSERT OR REPLACE INTO stats (key, summary) VALUES (?, ?)").run(key, JSON.stringify(next))
          }),
        summary: (key) => Effect.sync(() => summaryOf(key)),
      }

      return Context.make(RateLimits.RateLimits, rateLimits).pipe(
        Context.add(QuotaPauses.QuotaPauses, quotaPauses),
        Context.add(Concurrency.Concurrency, concurrency),
        Context.add(HedgeBudget.HedgeBudget, hedgeBudget),
        Context.add(ChannelStats.ChannelStats, channelStats),
      )
    }),
  )
