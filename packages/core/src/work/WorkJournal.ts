/**
 * The work journal: the durable record of every request of a bulk or batch run — what it asks for (its
 * request hash and its plan), where it stands, which batch job holds it, the file it produced and what it
 * cost — and of every batch job, from the moment Peel decides to send it. It is the source of truth for
 * resuming after a crash and for never paying twice:
 *
 * - a job is journaled as an **intent** (with the display name it will carry upstream) *before* it is
 *   sent, and confirmed with the upstream's name after; a crash in between leaves an intent that the next
 *   run resolves by looking the display name up upstream before sending anything again;
 * - a request is `done` only once its image is on disk, so collecting again after a crash writes what is
 *   missing and nothing twice.
 *
 * It is a service ({@link WorkJournal}) behind a small interface ({@link WorkJournalShape}) so that a
 * server database can back it when several machines share the work ({@link makePostgres}: workers claim
 * requests with a lease, `FOR UPDATE SKIP LOCKED`). The embedded store ({@link layer},
 * {@link make}) is SQLite through Node's built-in `node:sqlite` (`DatabaseSync`): one file, WAL mode,
 * `synchronous=FULL`, every change one transaction — nothing to install, and safe against `kill -9`.
 *
 * @since 0.3.0
 */
import { Effect, Layer, type Scope } from "effect"
import { JournalError, WorkJournal, type WorkJournalShape } from "./WorkRecords.ts"

export * from "./WorkRecords.ts"

/** The journal's file inside a state folder. @category files */
export const fileIn = (stateDir: string): string => `${stateDir.replace(/\/+$/, "")}/journal.sqlite`

/** The default state folder, relative to the working folder. @category files */
export const defaultStateDir = ".peel"

/**
 * Open (creating if needed) the SQLite journal at `path` for the life of the Scope. `:memory:` makes a
 * throwaway one for tests.
 *
 * @category constructors
 */
export const make = (path: string): Effect.Effect<WorkJournalShape, JournalError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => (await import("./WorkJournalSqlite.ts")).open(path),
      catch: (error) =>
        new JournalError({
          message: `cannot open the journal ${path}: ${error instanceof Error ? error.message : String(error)}`,
        }),
    }),
    (journal) => Effect.sync(() => journal.close()),
  ).pipe(Effect.map((journal) => journal.shape))

/**
 * Open the Postgres journal at `url` (a `postgres://` URL; its tables migrated) for the life of the Scope:
 * shared by every worker that connects, on any machine. The driver loads only here. While the server is
 * unreachable every operation pauses and retries; `outage` hears when that starts and ends.
 *
 * @category constructors
 */
export const makePostgres = (
  url: string,
  outage?: { readonly onUnreachable?: (message: string) => void; readonly onReachable?: () => void },
): Effect.Effect<WorkJournalShape, JournalError, Scope.Scope> =>
  Effect.flatMap(
    Effect.promise(() => import("./WorkJournalPg.ts")),
    (module) => module.make(url, outage),
  )

/** The Postgres journal at `url` as a Layer. @category layers */
export const layerPostgres = (url: string): Layer.Layer<WorkJournal, JournalError> =>
  Layer.effect(WorkJournal, makePostgres(url))

/**
 * The SQLite journal in `stateDir` (`<stateDir>/journal.sqlite`, folder created) as a Layer.
 *
 * @category layers
 */
export const layer = (stateDir: string): Layer.Layer<WorkJournal, JournalError> =>
  Layer.effect(WorkJournal, make(fileIn(stateDir)))
