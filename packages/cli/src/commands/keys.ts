/**
 * `peel keys create|list|revoke`: the gateway's virtual keys, in the state folder's SQLite file
 * (`<state>/journal.sqlite`, beside the work journal), which a running `peel serve --state` on the same
 * folder reads live.
 *
 * - `create --name NAME [--budget USD/WINDOW] [--rpm N] [--models a,b]` prints what it made, then the new
 *   key ALONE on the last line of stdout (`peel keys create --name x | tail -1`). It is shown once: only
 *   its SHA-256 and its first characters are kept.
 * - `list` prints name, prefix, status, limits and the spend of the current window (all time without a
 *   budget); `--json` one object per key. Never a secret, nor a hash.
 * - `revoke NAME` revokes the active key of that name: the next request with it is answered 401.
 *
 * With `--postgres URL` the keys and their spend are in Postgres. `list --redis URL` reads the spend from
 * the Redis that `peel serve --redis URL` records it in (the keys themselves stay in the state folder or
 * Postgres; with both flags, as with `peel serve`, the spend is Postgres's).
 *
 * @since 0.5.0
 */
import {
  KeySpend,
  Money,
  SpendLedger,
  SpendLedgerSqlite,
  State,
  VirtualKeys,
  VirtualKeysSqlite,
  WorkJournal,
} from "@peel/core"
import { Context, Effect, Layer, type Scope } from "effect"
import { ExitCode } from "../output.ts"

/**
 * The key spend ledger `peel serve --redis URL` keeps in Redis. A Redis that does not answer is an error
 * here, not the workers' fallback to memory: a listing from an empty ledger would show every key unspent.
 */
const redisLedger = (
  url: string,
): Effect.Effect<SpendLedger.SpendLedgerShape, VirtualKeys.KeyStoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const problems = yield* State.check({ redis: url })
    if (problems.length > 0) return yield* new VirtualKeys.KeyStoreError({ message: problems.join("; ") })
    const context = yield* Layer.build(State.layerOf({ redis: url })).pipe(
      Effect.mapError((error) => new VirtualKeys.KeyStoreError({ message: error.message })),
    )
    return Context.get(context, SpendLedger.SpendLedger)
  })

/**
 * The key store and the key spend ledger: of a state folder (one SQLite file), or in Postgres with
 * `--postgres URL` (what every gateway replica given that URL reads); with `redis` (and no Postgres) the
 * spend is read from that Redis, where `peel serve --redis URL` records it.
 */
export const openState = (
  state: string,
  postgres?: string | undefined,
  redis?: string | undefined,
): Effect.Effect<
  { readonly keys: VirtualKeys.VirtualKeysShape; readonly ledger: SpendLedger.SpendLedgerShape },
  VirtualKeys.KeyStoreError,
  Scope.Scope
> =>
  Effect.gen(function* () {
    if (postgres !== undefined) {
      const keys = yield* State.makeVirtualKeysPostgres(postgres)
      const ledger = yield* State.makeSpendLedgerPostgres(postgres).pipe(
        Effect.mapError((error) => new VirtualKeys.KeyStoreError({ message: error.message })),
      )
      return { keys, ledger }
    }
    const file = WorkJournal.fileIn(state)
    const keys = yield* VirtualKeysSqlite.make(file)
    const ledger = redis === undefined ? yield* SpendLedgerSqlite.make(file) : yield* redisLedger(redis)
    return { keys, ledger }
  })

const fail = (message: string, code: number = ExitCode.usage) =>
  Effect.sync(() => {
    process.stderr.write(`peel keys: ${message}\n`)
    return code
  })

/** Limits in a line: `budget $5.00/1d, 30 rpm, models gemini-3-pro-image`. */
export const limitsText = (limits: VirtualKeys.Limits): string => {
  const parts: Array<string> = []
  if (limits.budget !== undefined) parts.push(`budget ${Money.format(limits.budget.limitUsd)}/${limits.budget.window}`)
  if (limits.rpm !== undefined) parts.push(`${limits.rpm} rpm`)
  if (limits.models !== undefined) parts.push(`models ${limits.models.join(",")}`)
  return parts.length === 0 ? "no limits" : parts.join(", ")
}

export interface CreateOptions {
  readonly name: string
  readonly budget?: string
  readonly rpm?: number
  readonly models?: string
  readonly state: string
  /** `--postgres URL`: the keys in Postgres instead of the state folder. */
  readonly postgres?: string | undefined
}

export const create = (options: CreateOptions): Effect.Effect<number> =>
  Effect.gen(function* () {
    let budget: VirtualKeys.KeyBudget | undefined
    if (options.budget !== undefined) {
      const parsed = VirtualKeys.parseBudget(options.budget)
      if (typeof parsed === "string") return yield* fail(`--budget: ${parsed}`)
      budget = parsed
    }
    const limits: VirtualKeys.Limits = {
      ...(budget === undefined ? {} : { budget }),
      ...(options.rpm === undefined ? {} : { rpm: options.rpm }),
      ...(options.models === undefined ? {} : { models: options.models.split(",") }),
    }
    const { keys } = yield* openState(options.state, options.postgres)
    const { record, secret } = yield* VirtualKeys.create(keys, options.name, limits)
    process.stdout.write(
      `created key "${record.name}" (${record.prefix}…): ${limitsText(record.limits)}\n` +
        "the key is shown once, below; Peel keeps only its hash\n" +
        `${secret}\n`,
    )
    return ExitCode.ok
  }).pipe(
    Effect.scoped,
    Effect.catchTags({
      InvalidKeySpec: (error) => fail(error.message),
      KeyNameTaken: (error) => fail(error.message, ExitCode.failed),
      KeyStoreError: (error) => fail(error.message, ExitCode.failed),
    }),
  )

const pad = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")
}

export interface ListOptions {
  readonly state: string
  readonly json: boolean
  /** `--postgres URL`: the keys in Postgres instead of the state folder. */
  readonly postgres?: string | undefined
  /** `--redis URL`: the spend where `peel serve --redis URL` records it (unless Postgres holds it). */
  readonly redis?: string | undefined
}

export const list = (options: ListOptions): Effect.Effect<number> =>
  Effect.gen(function* () {
    const { keys, ledger } = yield* openState(options.state, options.postgres, options.redis)
    const views = yield* Effect.forEach(yield* keys.list, (record) => KeySpend.view(ledger, record))
    if (options.json) {
      for (const view of views) process.stdout.write(`${JSON.stringify(view)}\n`)
      return ExitCode.ok
    }
    if (views.length === 0) {
      process.stdout.write(`no keys in ${WorkJournal.fileIn(options.state)}: peel keys create --name NAME\n`)
      return ExitCode.ok
    }
    const spent = (view: KeySpend.KeyView) =>
      view.budget === undefined
        ? `${Money.format(view.spentUsd)} all time`
        : `${Money.format(view.spentUsd)} of ${Money.format(view.budget.limitUsd)} this ${view.budget.window}`
    process.stdout.write(
      `${pad([
        ["name", "prefix", "status", "budget", "rpm", "models", "spent"],
        ...views.map((view) => [
          view.name,
          `${view.prefix}…`,
          view.status,
          view.budget === undefined ? "-" : `${Money.format(view.budget.limitUsd)}/${view.budget.window}`,
          view.rpm === undefined ? "-" : String(view.rpm),
          view.models === undefined ? "any" : view.models.join(","),
          spent(view),
        ]),
      ])}\n`,
    )
    return ExitCode.ok
  }).pipe(
    Effect.scoped,
    Effect.catchTag("KeyStoreError", (error) => fail(error.message, ExitCode.failed)),
  )

export interface RevokeOptions {
  readonly name: string
  readonly state: string
  /** `--postgres URL`: the keys in Postgres instead of the state folder. */
  readonly postgres?: string | undefined
}

export const revoke = (options: RevokeOptions): Effect.Effect<number> =>
  Effect.gen(function* () {
    const { keys } = yield* openState(options.state, options.postgres)
    const record = yield* keys.revoke(options.name)
    process.stdout.write(`revoked key "${record.name}" (${record.prefix}…): requests with it are refused from now on\n`)
    return ExitCode.ok
  }).pipe(
    Effect.scoped,
    Effect.catchTags({
      KeyNotFound: (error) => fail(error.message, ExitCode.failed),
      KeyStoreError: (error) => fail(error.message, ExitCode.failed),
    }),
  )
