/**
 * The state services a pipeline decides with — everything several processes would share: circuit breakers,
 * rate limits, quota pauses, per-channel concurrency, the hedge budget, channel statistics, the image cache
 * with in-flight coalescing, the spend ledger, output lookup. Stages obtain them from the context in their
 * `make`; a runner builds one {@link Services} context for all its stages from a Layer: {@link layerMemory} by
 * default (zero set-up), or what the pipeline's `state:` block or `RunnerOptions.state` chooses.
 *
 * Each service lives in its own module in this folder with its interface (effectful, atomic, lease-based
 * where a process can die, so a network store can implement it) and its memory Layer.
 *
 * @since 0.4.0
 */
import { ConfigError, ConfigProblem } from "@peel/contract/Errors"
import { Effect, Layer, Schema, type Scope } from "effect"
import * as Breakers from "./Breakers.ts"
import * as ChannelStats from "./ChannelStats.ts"
import * as Concurrency from "./Concurrency.ts"
import * as HedgeBudget from "./HedgeBudget.ts"
import * as ImageCache from "./ImageCache.ts"
import * as OutputLookup from "./OutputLookup.ts"
import * as QuotaPauses from "./QuotaPauses.ts"
import * as RateLimits from "./RateLimits.ts"
import * as SpendLedger from "./SpendLedger.ts"
import * as VirtualKeys from "./VirtualKeys.ts"

/**
 * The breakers' store and the channel statistics, for readers outside the engine (a gateway's status page:
 * `Breakers.circuitKey`, `ChannelStats.percentile`).
 *
 * @category services
 */
export { Breakers, ChannelStats }

/** Every state service a stage may ask for. @category model */
export type Services =
  | Breakers.Breakers
  | RateLimits.RateLimits
  | QuotaPauses.QuotaPauses
  | Concurrency.Concurrency
  | HedgeBudget.HedgeBudget
  | ChannelStats.ChannelStats
  | SpendLedger.SpendLedger
  | ImageCache.ImageCache
  | OutputLookup.OutputLookup

/**
 * A pipeline's `state:` block (or `--redis URL`): where its state lives. Nothing, or `store: memory`: this
 * process's memory. `redis: URL`: the decision state (breakers, rate limits, quota pauses, concurrency,
 * hedge budget, channel statistics, spend ledger, image cache) in Redis, shared by every worker naming
 * it; `failOpen` lets budgets spend against the worker's own ledger while Redis is unreachable (they
 * refuse otherwise).
 *
 * @category model
 */
export interface StateConfig {
  readonly store?: "memory" | undefined
  /** A `postgres://` URL: the spend ledger lives there (and bulk runs journal their work there). */
  readonly postgres?: string | undefined
  /** A Redis URL (`redis://host:port`); the state services live there. */
  readonly redis?: string | undefined
  /** While Redis is unreachable, budgets reserve against this worker's own ledger instead of refusing. */
  readonly failOpen?: boolean | undefined
}

/** Each state service in memory: one process, nothing to set up. @category layers */
export const layerMemory: Layer.Layer<Services> = Layer.mergeAll(
  Breakers.layerMemory,
  RateLimits.layerMemory,
  QuotaPauses.layerMemory,
  Concurrency.layerMemory,
  HedgeBudget.layerMemory,
  ChannelStats.layerMemory,
  SpendLedger.layerMemory,
  ImageCache.layerMemory,
  OutputLookup.layerFolder,
)

/**
 * The state Layers a pipeline's `state:` block chooses (memory when it has none): with `redis`, every
 * decision service in Redis (falling back to memory while it is unreachable); with `postgres`, the spend
 * ledger is in Postgres (building the Layer fails when the server cannot be reached), over either.
 *
 * @category layers
 */
export const layerOf = (
  config: StateConfig | undefined,
  /** The pipeline file, named in the error when a store cannot be reached. */
  file = "state:",
): Layer.Layer<Services, ConfigError> => {
  const redis = config?.redis
  // Redis is loaded only when named (a dynamic import: nobody else loads a Redis client); the output
  // lookup stays the folder's.
  const base: Layer.Layer<Services> =
    redis === undefined
      ? layerMemory
      : Layer.unwrap(
          Effect.map(
            Effect.promise(() => import("./redis/RedisState.ts")),
            (RedisState) =>
              Layer.merge(
                OutputLookup.layerFolder,
                RedisState.layer({ url: redis, failOpen: config?.failOpen === true }),
              ),
          ),
        )
  if (config?.postgres === undefined) return base
  const unreachable = (error: StoreUnavailable) =>
    new ConfigError({
      file,
      problems: [new ConfigProblem({ file, line: 1, column: 1, message: error.message, severity: "error" })],
    })
  return Layer.merge(
    base,
    Layer.effect(SpendLedger.SpendLedger, Effect.mapError(makeSpendLedgerPostgres(config.postgres), unreachable)),
  )
}

/**
 * Whether the stores a `state:` block names can be reached (`peel validate`): one problem per store that
 * cannot, naming its host (never a password). Memory always can.
 *
 * @category checks
 */
export const check = (config: StateConfig | undefined): Effect.Effect<ReadonlyArray<string>> => {
  const redis = config?.redis
  if (redis === undefined) return Effect.succeed([])
  return Effect.flatMap(
    Effect.promise(() => import("./redis/RedisState.ts")),
    (RedisState) =>
      RedisState.check(redis).pipe(
        Effect.as([] as ReadonlyArray<string>),
        Effect.catch((problem) => Effect.succeed([problem])),
      ),
  )
}

/** A shared store could not be opened. @category errors */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  message: Schema.String,
}) {
  /** Opening again later may work (the server may come back). */
  readonly retryable = true
}

/**
 * Every budget's ledger in Postgres at `url` (tables migrated), shared by every worker that connects. The
 * driver loads only here. While the server is unreachable, each operation pauses and retries (a budget
 * fails closed).
 *
 * @category constructors
 */
export const makeSpendLedgerPostgres = (
  url: string,
  outage?: { readonly onUnreachable?: (message: string) => void; readonly onReachable?: () => void },
): Effect.Effect<SpendLedger.SpendLedgerShape, StoreUnavailable, Scope.Scope> =>
  Effect.flatMap(
    Effect.promise(() => import("./SpendLedgerPg.ts")),
    (module) =>
      Effect.mapError(
        module.make(url, outage),
        (error) => new StoreUnavailable({ message: `spend ledger: ${error.message}` }),
      ),
  )

/** @category layers */
export const spendLedgerPostgres = (url: string): Layer.Layer<SpendLedger.SpendLedger, StoreUnavailable> =>
  Layer.effect(SpendLedger.SpendLedger, makeSpendLedgerPostgres(url))

/**
 * Whether the Postgres server at `url` answers and its tables can be migrated (`peel validate`):
 * `undefined` when it does, else why not (the URL's password never in it).
 *
 * @category accessors
 */
export const checkPostgres = (url: string): Effect.Effect<string | undefined> =>
  Effect.flatMap(
    Effect.promise(() => import("./Postgres.ts")),
    (module) => module.check(url),
  )

/**
 * Virtual keys in Postgres at `url` (tables migrated): shared by every gateway replica and `peel keys`
 * that connect. The driver loads only here.
 *
 * @category constructors
 */
export const makeVirtualKeysPostgres = (
  url: string,
  outage?: { readonly onUnreachable?: (message: string) => void; readonly onReachable?: () => void },
): Effect.Effect<VirtualKeys.VirtualKeysShape, VirtualKeys.KeyStoreError, Scope.Scope> =>
  Effect.flatMap(
    Effect.promise(() => import("./VirtualKeysPg.ts")),
    (module) => module.make(url, outage),
  )

/** @category layers */
export const virtualKeysPostgres = (url: string): Layer.Layer<VirtualKeys.VirtualKeys, VirtualKeys.KeyStoreError> =>
  Layer.effect(VirtualKeys.VirtualKeys, makeVirtualKeysPostgres(url))
