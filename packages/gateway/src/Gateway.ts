/**
 * The gateway: load the pipeline and build its runner ONCE, then serve every route module on one
 * `effect/http` router over Node's HTTP server. Each route maps its wire onto one ImageRequest and one run
 * of the pipeline through {@link Execute} (routing, retry, hedging, fallback, cache, budgets and cost
 * accounting as in the CLI).
 *
 * Server operation:
 * - body limit {@link Errors.maxBodyBytes} (14 reference images); headers within 30 s, the whole request
 *   body within 5 minutes, idle keep-alive connections closed after 65 s (above common load balancers' 60 s);
 * - {@link Running.drain}: new requests get 503 + `Connection: close` and `/readyz` says not ready; closing
 *   the Scope then waits (up to `drainTimeout`) for requests in flight, then for runs in flight whose
 *   clients left — each run is paid once and its image reaches the cache;
 * - one access-log line per request (JSON; no prompt, no key, no query string).
 *
 * @since 0.1.0
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import type { ConfigError, MissingSecret, OutputError } from "@peel/contract/Errors"
import { type Pipeline, type Runner, Session, type VirtualKeys, WorkJournal } from "@peel/core"
import { Context, Duration, Effect, Layer, type Scope } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import type { ServeError } from "effect/http/HttpServerError"
import * as NetAddress from "effect/net/NetAddress"
import * as AdminRoutes from "./admin/routes.ts"
import { layer as eventsLayer, GatewayEvents, type GatewayEventsShape } from "./Events.ts"
import { Execute, type ExecuteShape, layer as executeLayer } from "./Execute.ts"
import * as GeminiRoutes from "./gemini/routes.ts"
import * as Health from "./Health.ts"
import * as Http from "./Http.ts"
import { type KeyPolicy, layerOpen } from "./KeyPolicy.ts"
import * as Keys from "./keys/Keys.ts"
import * as OpenAiRoutes from "./openai/routes.ts"
import * as Ops from "./ops/Ops.ts"
import * as OpsRoutes from "./ops/routes.ts"

/**
 * Every route module, mounted in this order (a module is a Layer that adds its routes with
 * `HttpRouter.use`). Add one line per module; keep the catch-all 404 (`Health.routes`) last: the router
 * prefers exact paths, except `/` (the status page), which a `/*` registered before it would shadow.
 */
const routeModules = [
  GeminiRoutes.routes,
  OpenAiRoutes.routes,
  AdminRoutes.routes,
  OpsRoutes.routes,
  Health.routes,
] as const

/** @category models */
export interface GatewayOptions<E = never, R = never> {
  /** The pipeline YAML file. */
  readonly pipeline: string
  /** Address to listen on (default 127.0.0.1). */
  readonly host?: string | undefined
  /** Port (default 8080; 0 picks a free one). */
  readonly port?: number | undefined
  /** Folder of the gateway's state (key store, journal); `./.peel` when unset. */
  readonly stateDir?: string | undefined
  /** How the pipeline is loaded (environment, where plugins resolve from). */
  readonly load?: Pipeline.LoadOptions | undefined
  /** Runner options (state Layers, base folder). */
  readonly runner?: Omit<Runner.RunnerOptions, "output" | "outDir" | "observers"> | undefined
  /**
   * The runner's observers (the call log: `peel serve --call-log`): every attempt and request of every
   * run; a keyed request's lines carry its key's name (`peel stats --by key`).
   */
  readonly observers?: ReadonlyArray<Runner.Observer> | undefined
  /** Who may call and spend: everyone when unset ({@link layerOpen}) and `keys` is unset too. */
  readonly keyPolicy?: Layer.Layer<KeyPolicy, E, R> | undefined
  /**
   * Virtual keys (`peel serve`'s default, mode `auto`): the key policy over the key store, and the admin
   * API when `keys.adminKey` is set. Stores: the state folder's SQLite file unless `keys.stores` says.
   */
  readonly keys?: Keys.KeysConfig | undefined
  /** Readiness checks `/readyz` runs (stores reachable). */
  readonly readiness?: ReadonlyArray<Health.ReadinessCheck> | undefined
  /** Where access-log lines go (stderr by default); `false`: no access log. */
  readonly accessLog?: ((line: string) => void) | false | undefined
  /** Each loader and plugin warning, one line each. */
  readonly onWarning?: ((line: string) => void) | undefined
  /** How long the drain waits for requests and runs in flight (default 30 s). */
  readonly drainTimeout?: Duration.Input | undefined
  /** Headers must arrive within this (default 30 s). */
  readonly headersTimeout?: Duration.Input | undefined
  /** The whole request (headers and body) must arrive within this (default 5 minutes). */
  readonly requestTimeout?: Duration.Input | undefined
  /** Idle keep-alive connections are closed after this (default 65 s). */
  readonly keepAliveTimeout?: Duration.Input | undefined
}

/** A running gateway. @category models */
export interface Running {
  /** `http://HOST:PORT`, no trailing slash. */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly runner: Runner.RunnerShape
  readonly execute: ExecuteShape
  readonly events: GatewayEventsShape
  /** Stop taking new requests (503, `Connection: close`; `/readyz` not ready). Close the Scope to finish the drain. */
  readonly drain: Effect.Effect<void>
  /** Loader and plugin warnings. */
  readonly warnings: ReadonlyArray<string>
}

/** @category errors */
export type StartError<E = never> =
  | ConfigError
  | MissingSecret
  | OutputError
  | ServeError
  | VirtualKeys.KeyStoreError
  | E

/** The services every route module may read when it is built. @category models */
export type RouteServices =
  | Execute
  | KeyPolicy
  | Keys.Admin
  | GatewayEvents
  | Http.AccessLog
  | Http.Drain
  | Health.Readiness
  | Ops.Ops

const millis = (input: Duration.Input | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.fromInputUnsafe(input))

/** The key policy and admin API the options choose: a given policy, virtual keys, or open. */
const keysLayer = <E, R>(
  options: GatewayOptions<E, R>,
): Layer.Layer<KeyPolicy | Keys.Admin, E | VirtualKeys.KeyStoreError, R> =>
  options.keyPolicy !== undefined
    ? Layer.merge(options.keyPolicy, Keys.layerAdminOff)
    : options.keys !== undefined
      ? Keys.layer(options.keys, options.stateDir ?? WorkJournal.defaultStateDir)
      : Layer.merge(layerOpen, Keys.layerAdminOff)

/**
 * Start a gateway in the current Scope; closing the Scope drains it (see the module's notes).
 *
 * @category constructors
 */
export const start = <E = never, R = never>(
  options: GatewayOptions<E, R>,
): Effect.Effect<Running, StartError<E>, R | Scope.Scope> =>
  Effect.gen(function* () {
    const session = yield* Session.open(options.pipeline, {
      load: options.load,
      runner: options.runner,
      onWarning: options.onWarning,
      ...(options.observers === undefined ? {} : { observers: Effect.succeed(options.observers) }),
    })
    const drainMs = millis(options.drainTimeout, 30_000)
    // Built first, so they close last: runs in flight finish after the HTTP server has drained.
    const services = yield* Layer.build(
      Layer.mergeAll(executeLayer(session.runner), Ops.layer(session.runner)).pipe(
        Layer.provideMerge(
          Layer.mergeAll(
            eventsLayer,
            keysLayer<E, R>(options),
            options.accessLog === false ? Http.layerAccessLogOff : Http.layerAccessLog(options.accessLog),
            Http.layerDrain,
            Health.layerReadiness(options.readiness ?? []),
          ),
        ),
      ),
    )
    const execute = Context.get(services, Execute)
    // Bound the wait for runs in flight at close (registered after the Execute Layer, so it runs before
    // its unbounded wait; interrupted runs are settled by their admission's release).
    yield* Effect.addFinalizer(() =>
      execute.drain.pipe(Effect.timeoutOrElse({ duration: drainMs, orElse: () => Effect.void })),
    )
    const server = NodeHttpServer.layer(
      () =>
        createServer({
          headersTimeout: millis(options.headersTimeout, 30_000),
          // How often Node checks those deadlines (its default, 30 s, would let a slow client hold a socket twice as long).
          connectionsCheckingInterval: Math.max(50, Math.min(5_000, millis(options.headersTimeout, 30_000) / 2)),
          requestTimeout: millis(options.requestTimeout, 300_000),
          keepAliveTimeout: millis(options.keepAliveTimeout, 65_000),
        }),
      {
        host: options.host ?? "127.0.0.1",
        port: options.port ?? 8080,
        gracefulShutdownTimeout: Duration.millis(drainMs),
      },
    )
    const app = HttpRouter.serve(Layer.mergeAll(...routeModules), {
      disableLogger: true,
      disableListenLog: true,
    }).pipe(Layer.provideMerge(server), Layer.provide(Layer.succeedContext(services)))
    const built = yield* Layer.build(app)
    const address = Context.get(built, HttpServer.HttpServer).address
    const host = address._tag === "UnixPathAddress" ? "localhost" : NetAddress.formatIp(address.address)
    const port = address._tag === "UnixPathAddress" ? 0 : address.port
    const shownHost = host.includes(":") ? `[${host}]` : host
    return {
      url: `http://${shownHost}:${port}`,
      host,
      port,
      runner: session.runner,
      execute,
      events: Context.get(services, GatewayEvents),
      drain: Context.get(services, Http.Drain).start,
      warnings: session.warnings,
    }
  })
