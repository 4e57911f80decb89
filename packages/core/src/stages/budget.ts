/**
 * `budget`: request-level. A spend cap per window (`{ limit: 50, window: 1d }`): before the request calls
 * anybody, the most its plan could cost on one call (its dearest candidate's expected price) is
 * reserved; afterwards the reservation is settled with what the journal says the request cost (billed
 * failures included). A request that could pass the cap fails with `BudgetExceeded`, with the numbers,
 * before any call. See {@link Budget} for the ledger and the guarantee.
 *
 * **Where the ledger lives.** `store: file` keeps this budget in its own SQLite file (`path`): it survives
 * restarts and every process that opens the file shares the cap, whatever the runner's state Layers are.
 * Otherwise (`store: memory`, or no `store`) the budget lives in the runner's {@link SpendLedger} state
 * service — memory in `State.layerMemory` (this process, forgotten on exit, as before), or the shared
 * store the pipeline's `state:` block or `RunnerOptions.state` provides — keyed by `name` and window
 * length. Reservations are leased for an hour: one whose process died stops counting then.
 *
 * Place it inside `cache` (a hit costs nothing and needs no budget) and outside `fallback` and
 * `generate`.
 *
 * @since 0.3.0
 */
import { resolve } from "node:path"
import { BudgetExceeded, ConfigError, ConfigProblem } from "@peel/contract/Errors"
import * as Units from "@peel/contract/Units"
import { Effect, Schema } from "effect"
import { Journal } from "../engine/AttemptJournal.ts"
import type { Middleware, StageDefinition } from "../engine/Stage.ts"
import * as Budget from "../spend/Budget.ts"
import * as SpendLedger from "../state/SpendLedger.ts"
import * as SpendLedgerSqlite from "../state/SpendLedgerSqlite.ts"

/** @deprecated use `Units.parseMillis` from `@peel/contract` (one units parser); kept for one release. @category parsing */
export const parseWindow = Units.parseMillis

const oneDay = 86_400_000

const Config = Schema.Struct({
  limit: Schema.Number.check(Schema.isGreaterThan(0)).annotate({ description: "Most USD spent per window" }),
  window: Schema.optional(Units.Window).annotate({
    description: "Window length; windows are aligned to the epoch, so 1d is a UTC day (default 1d)",
  }),
  store: Schema.optional(Schema.Literals(["memory", "file"])).annotate({
    description:
      "memory: this process, forgotten on exit; file: a SQLite file that survives restarts and that processes share (default memory)",
  }),
  path: Schema.optional(Schema.String).annotate({
    description: "The SQLite file for store: file, relative to the pipeline file (e.g. ../.peel/budget.sqlite)",
  }),
  name: Schema.optional(Schema.String).annotate({
    description: "Budgets sharing one file are told apart by name (default: default)",
  }),
}).annotate({
  description:
    "A spend cap per window: each request reserves its expected price before any call and settles with its real cost; a request that could pass the cap fails with BudgetExceeded",
  examples: [{ limit: 50, window: "1d", store: "file", path: "../.peel/budget.sqlite" }],
})

/** @category model */
export type BudgetConfig = typeof Config.Type

/**
 * Budget middleware over an account (one cap in a spend ledger). A synchronous {@link Budget.Ledger} is
 * taken too (wrapped with {@link Budget.fromLedger}).
 *
 * @category constructors
 */
export const middleware =
  (ledger: Budget.Account | Budget.Ledger, channels: Parameters<typeof Budget.reservationOf>[1]): Middleware =>
  (next) => {
    const account = "close" in ledger ? Budget.fromLedger(ledger) : ledger
    return (plan) =>
      Effect.gen(function* () {
        const usd = Budget.reservationOf(plan, channels)
        const reservation = yield* account.reserve(usd)
        if ("_tag" in reservation)
          return yield* new BudgetExceeded({
            message: Budget.refusalMessage(reservation),
            limitUsd: reservation.status.limitUsd,
            spentUsd: reservation.status.spentUsd,
          })
        const journal = yield* Journal
        const before = journal.costUsd()
        return yield* next(plan).pipe(
          Effect.onExit(() => account.settle(reservation, Math.max(0, journal.costUsd() - before))),
        )
      })
  }

/** @category stages */
export const budget: StageDefinition<BudgetConfig> = {
  key: "budget",
  description: "A spend cap per window; reserve the expected price before a call, settle after",
  schema: Config,
  check: (config) => [
    ...(config.store === "file" && config.path === undefined
      ? [{ path: ["path"], message: "store: file needs a path (the SQLite file)", severity: "error" as const }]
      : []),
    ...(config.store !== "file" && config.path !== undefined
      ? [{ path: ["path"], message: "path is used only by store: file", severity: "warning" as const }]
      : []),
  ],
  make: (config, context) =>
    Effect.gen(function* () {
      const cap: Budget.Cap = {
        limitUsd: config.limit,
        windowMillis: Units.parseMillis(config.window ?? "1d") ?? oneDay,
      }
      const name = config.name ?? "default"
      if (config.store !== "file") {
        // The runner's spend ledger (State): memory by default, or the store the state Layers choose. Budgets
        // in one ledger are told apart by name and window length.
        const ledger = yield* SpendLedger.SpendLedger
        return { around: middleware(Budget.account(ledger, cap, `${name}/${cap.windowMillis}`), context.channels) }
      }
      const path = resolve(context.pipelineDir, config.path ?? ".peel/budget.sqlite")
      const ledger = yield* SpendLedgerSqlite.make(path).pipe(
        Effect.catchDefect((error) =>
          Effect.fail(
            new ConfigError({
              file: context.pipelineFile,
              problems: [
                new ConfigProblem({
                  file: context.pipelineFile,
                  line: 1,
                  column: 1,
                  message: `budget: cannot open ${config.path}: ${error instanceof Error ? error.message : String(error)}`,
                  severity: "error",
                }),
              ],
            }),
          ),
        ),
      )
      return { around: middleware(Budget.account(ledger, cap, name), context.channels) }
    }),
}
