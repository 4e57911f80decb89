/**
 * `peel serve PIPELINE [--host 127.0.0.1] [--port 8080] [--state DIR]`: the gateway (`@peel/gateway`) in
 * front of the pipeline's runner. The first line on stdout is `peel gateway listening on http://HOST:PORT`;
 * the access log (one JSON line per request, no prompt, no key) and warnings go to stderr.
 *
 * Virtual keys (`--keys`, default `auto`): the keys `peel keys` keeps in the state folder (`--state`), read
 * live — required once the folder holds any key, open until then; `required` closes it from the start, `off`
 * leaves it open. `--admin-key-env VAR` enables the admin API (`/admin/keys`) with the admin key in the
 * environment variable VAR (unset or empty: a usage error). `--call-log FILE` writes the call log `peel
 * stats` reads, each keyed request's lines with its key's name (`peel stats --by key`).
 *
 * Stopping: the first SIGINT or SIGTERM drains — new requests get 503, requests and runs in flight finish
 * (up to `--drain-timeout`, each paid once) — then exits 0. A second signal aborts at once.
 *
 * @since 0.5.0
 */
import { RateLimits, SpendLedger, State, Units, VirtualKeys, VirtualKeysSqlite, WorkJournal } from "@peel/core"
import { Observe } from "@peel/observability"
import { Context, Deferred, Effect, Layer, Result } from "effect"
import { sizeGatewayHeap } from "../nodeFlags.ts"
import { ExitCode, printOpenError } from "../output.ts"
import { loadOptionsWith } from "../plugins.ts"
import * as Signals from "../signals.ts"

export interface ServeOptions {
  readonly file: string
  readonly host: string
  readonly port: number
  readonly state?: string
  readonly drainTimeout: string
  readonly accessLog: boolean
  /** `auto` | `required` | `off`. */
  readonly keys?: string
  /** The environment variable holding the admin key. */
  readonly adminKeyEnv?: string
  /** Append the call log here: a JSON line per attempt and per request, with the key's name. */
  readonly callLog?: string
  /**
   * `--postgres URL`: the virtual keys, their spend and every budget in Postgres, shared by every replica
   * given the URL (wins over the pipeline's `state: { postgres }` for the budgets).
   */
  readonly postgres?: string
  /** `--redis URL`: the state services (rate limits, breakers, budgets, cache) in this Redis, shared by replicas. */
  readonly redis?: string
}

/** The virtual keys and their spend in Postgres (rate limits per process until a shared store is chosen). */
const postgresKeyStores = (url: string) =>
  Layer.mergeAll(
    State.virtualKeysPostgres(url),
    Layer.effect(
      SpendLedger.SpendLedger,
      Effect.mapError(
        State.makeSpendLedgerPostgres(url),
        (error) => new VirtualKeys.KeyStoreError({ message: error.message }),
      ),
    ),
    RateLimits.layerMemory,
  )

/**
 * The key stores with `--redis URL`: per-key rpm in Redis (replicas share "never more than rpm in any
 * 60 s"), and the key spend ledger there too unless Postgres holds it; the keys themselves in Postgres or
 * the state folder's SQLite file.
 */
const redisKeyStores = (redis: string, postgres: string | undefined, stateDir: string) => {
  const shared = Layer.effectContext(
    Layer.build(State.layerOf({ redis })).pipe(
      Effect.mapError((error) => new VirtualKeys.KeyStoreError({ message: error.message })),
      Effect.map((context) =>
        Context.make(RateLimits.RateLimits, Context.get(context, RateLimits.RateLimits)).pipe(
          Context.add(SpendLedger.SpendLedger, Context.get(context, SpendLedger.SpendLedger)),
        ),
      ),
    ),
  )
  if (postgres !== undefined)
    return Layer.merge(
      postgresKeyStores(postgres),
      Layer.effectContext(
        Effect.map(Layer.build(shared), (context) =>
          Context.make(RateLimits.RateLimits, Context.get(context, RateLimits.RateLimits)),
        ),
      ),
    )
  return Layer.merge(shared, VirtualKeysSqlite.layer(WorkJournal.fileIn(stateDir)))
}

export const serve = Effect.fn("serve")(function* (options: ServeOptions) {
  sizeGatewayHeap()
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    process.stderr.write(`peel serve: --port must be a whole number from 0 to 65535 (got ${options.port})\n`)
    return ExitCode.usage
  }
  const drainTimeoutMs = Units.parseMillis(options.drainTimeout)
  if (drainTimeoutMs === undefined) {
    process.stderr.write(
      `peel serve: --drain-timeout must be a duration such as 500ms, 30s or 2m (got "${options.drainTimeout}")\n`,
    )
    return ExitCode.usage
  }
  const keys = options.keys ?? "auto"
  if (keys !== "auto" && keys !== "required" && keys !== "off") {
    process.stderr.write(`peel serve: --keys takes auto, required or off (got "${keys}")\n`)
    return ExitCode.usage
  }
  let adminKey: string | undefined
  if (options.adminKeyEnv !== undefined) {
    adminKey = process.env[options.adminKeyEnv]
    if (adminKey === undefined || adminKey.trim() === "") {
      process.stderr.write(
        `peel serve: --admin-key-env ${options.adminKeyEnv}: the environment variable is not set (it holds the admin key)\n`,
      )
      return ExitCode.usage
    }
    if (keys === "off") {
      process.stderr.write("peel serve: --admin-key-env manages virtual keys: it needs --keys auto or required\n")
      return ExitCode.usage
    }
  }
  // Loaded only for this command, so the other commands start without the gateway's code.
  const { Gateway } = yield* Effect.promise(() => import("@peel/gateway"))
  const signal = yield* Signals.firstSignal
  // The call log is opened before the gateway starts: a path that cannot be written is a usage error.
  const observing =
    options.callLog === undefined
      ? undefined
      : yield* Effect.result(Observe.make({ callLog: options.callLog, pipeline: options.file }))
  if (observing !== undefined && Result.isFailure(observing)) {
    process.stderr.write(`peel serve: --call-log: ${observing.failure.message}\n`)
    return ExitCode.usage
  }
  const observed = observing?.success
  const started = yield* Effect.result(
    Gateway.start({
      pipeline: options.file,
      host: options.host,
      port: options.port,
      stateDir: options.state,
      load: loadOptionsWith({ redis: options.redis, postgres: options.postgres }),
      drainTimeout: drainTimeoutMs,
      accessLog: options.accessLog ? undefined : false,
      ...(observed === undefined ? {} : { observers: observed.observers }),
      onWarning: (line) => process.stderr.write(`${line}\n`),
      ...(keys === "off"
        ? {}
        : {
            keys: {
              mode: keys,
              adminKey,
              ...(options.redis !== undefined
                ? {
                    stores: redisKeyStores(
                      options.redis,
                      options.postgres,
                      options.state ?? WorkJournal.defaultStateDir,
                    ),
                  }
                : options.postgres === undefined
                  ? {}
                  : { stores: postgresKeyStores(options.postgres) }),
            },
          }),
    }),
  )
  if (Result.isFailure(started)) {
    const error = started.failure
    if (error._tag === "ServeError") {
      process.stderr.write(`peel serve: cannot listen on ${options.host}:${options.port}: ${String(error.cause)}\n`)
      return ExitCode.usage
    }
    printOpenError("peel serve", options.file, error)
    return ExitCode.usage
  }
  const running = started.success
  process.stdout.write(`peel gateway listening on ${running.url}\n`)
  const received = yield* Deferred.await(signal)
  process.stderr.write(`peel serve: ${received}: draining (new requests get 503; in-flight ones finish)\n`)
  yield* running.drain
  return ExitCode.ok
})
