/**
 * The pieces the conformance suite is built from, reusable by any channel test: a sample request, building a
 * channel from its plugin in a Scope ({@link withChannel}), a {@link Harness} holding a running simulator and a
 * built channel, and log capture so a secret can be looked for in everything a channel printed.
 *
 * @since 0.1.0
 */
import { type Catalog, type Channel, type Errors, Plugin } from "@peel/core"
import { Simulator } from "@peel/simulator"
import { Cause, Effect, Exit, type Fiber, Layer, Logger, References, Scope } from "effect"

/** The name every channel under test is given (`channels.under-test` in a pipeline). @category harness */
export const channelName = "under-test"

/** The pipeline file name every channel under test is told it came from. @category harness */
export const pipelineFile = "conformance"

/**
 * A request as a channel sees it, with everything set: Pro model, 1K, 1:1 unless overridden.
 *
 * @category requests
 */
export const sampleRequest = (overrides: Partial<Channel.ChannelRequest> = {}): Channel.ChannelRequest => ({
  id: "conformance-1",
  prompt: "a lighthouse on a cliff at dusk, watercolour",
  model: "gemini-3-pro-image",
  size: "1K",
  aspectRatio: "1:1",
  ...overrides,
})

/** One request the simulator received, as `sim.requests()` reports it. @category simulator */
export interface RecordedRequest {
  readonly route: string
  readonly method: string
  readonly path: string
  readonly query: unknown
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, unknown>>
  /** Parsed JSON body, or `undefined`. */
  readonly body: unknown
}

/** One upstream call in the simulator's ledger. @category simulator */
export interface LedgerCall {
  readonly seq: number
  readonly route: string
  readonly status?: number | undefined
  readonly outcome?: string | undefined
  readonly clientWentAway?: boolean | undefined
}

/** The simulator's ledger (`GET /_simulator/ledger`), as much of it as the suite reads. @category simulator */
export interface Ledger {
  readonly calls: ReadonlyArray<LedgerCall>
  readonly totals: { readonly calls: number; readonly billedImages: number; readonly billedUsd: number }
}

/**
 * The simulator handle as the suite uses it. Methods may answer directly or with a Promise; the suite
 * awaits either.
 *
 * @category simulator
 */
export interface SimulatorHandle {
  readonly url: string
  readonly script: (route: string, faults: ReadonlyArray<string>) => unknown
  readonly ledger: () => Ledger | Promise<Ledger>
  readonly requests: () => ReadonlyArray<RecordedRequest> | Promise<ReadonlyArray<RecordedRequest>>
  readonly reset: () => unknown
  readonly stop: () => Promise<unknown>
}

/** Start a simulator on a free port. @category simulator */
export const startSimulator = async (): Promise<SimulatorHandle> => {
  const simulator = await Simulator.start({ port: 0 })
  return {
    ...simulator,
    // Routes and fault kinds come from a channel's options as plain strings; the simulator checks them.
    script: (route, faults) =>
      simulator.script(route as Simulator.RouteName, faults as ReadonlyArray<Simulator.FaultKind>),
  }
}

/** Something the channel produced, kept so a secret can be searched for in it. @category harness */
export interface Exposure {
  /** Where it came from: `error 503`, `log`, `warning`, `result 1K 1:1`, ... */
  readonly where: string
  readonly text: string
}

/**
 * A running simulator with one channel built against it, and everything the channel said so far.
 *
 * @category harness
 */
export interface Harness {
  readonly simulator: SimulatorHandle
  readonly channel: Channel.Channel
  /** The simulator route the channel must call. */
  readonly route: string
  /** The secret that must never show. */
  readonly secret: string
  /** Every error, result, log line and warning seen, in order. */
  readonly exposures: Array<Exposure>
  /** Run an effect with log capture (every level), recording each log line as an exposure. */
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Promise<Exit.Exit<A, E>>
  /** Start an effect in the background with the same log capture. */
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  /** Close the channel's Scope and stop the simulator (unless it was given). */
  readonly close: () => Promise<void>
}

/**
 * A Logger replacement that records every log line (message, annotations, spans and cause) at every level.
 *
 * @category logs
 */
export const captureLogs = (record: (line: string) => void): Layer.Layer<never> =>
  Layer.mergeAll(
    Logger.layer([
      Logger.make((options) => {
        const line = Logger.formatLogFmt.log(options)
        record(options.cause.reasons.length === 0 ? line : `${line} ${Cause.pretty(options.cause)}`)
      }),
    ]),
    Layer.succeed(References.MinimumLogLevel, "All"),
  )

/** What {@link makeHarness} needs. @category harness */
export interface HarnessOptions<Config> {
  readonly plugin: Channel.ChannelPlugin<Config>
  readonly route: string
  /** The channel's YAML block (without `plugin`) for a simulator at `simulatorUrl`. */
  readonly config: (simulatorUrl: string) => unknown
  readonly secret: string
  /** Use this simulator instead of starting one (it is then not stopped by `close`). */
  readonly simulator?: SimulatorHandle
}

/**
 * Start a simulator (unless given one) and build the channel with `Plugin.build` in a fresh Scope, capturing
 * logs and `warn` messages. Fails (rejects) when the plugin cannot be built from the block.
 *
 * @category harness
 */
export const makeHarness = async <Config>(options: HarnessOptions<Config>): Promise<Harness> => {
  const simulator = options.simulator ?? (await startSimulator())
  const exposures: Array<Exposure> = []
  const logs = captureLogs((text) => exposures.push({ where: "log", text }))
  const scope = Effect.runSync(Scope.make())
  const context: Channel.MakeContext = {
    name: channelName,
    file: pipelineFile,
    warn: (text) => exposures.push({ where: "warning", text }),
  }
  const built = await Effect.runPromiseExit(
    Plugin.build(options.plugin, options.config(simulator.url), context).pipe(
      Scope.provide(scope),
      Effect.provide(logs),
    ),
  )
  if (Exit.isFailure(built)) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    if (options.simulator === undefined) await simulator.stop()
    throw new Error(`plugin ${options.plugin.name} could not be built: ${Cause.pretty(built.cause)}`)
  }
  return {
    simulator,
    channel: built.value,
    route: options.route,
    secret: options.secret,
    exposures,
    run: (effect) => Effect.runPromiseExit(effect.pipe(Effect.provide(logs))),
    fork: (effect) => Effect.runFork(effect.pipe(Effect.provide(logs))),
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      if (options.simulator === undefined) await simulator.stop()
    },
  }
}

/**
 * Build a channel from its plugin and YAML block in a Scope of its own, use it, and close it.
 *
 * @category harness
 */
export const withChannel = <Config, A, E, R>(
  plugin: Channel.ChannelPlugin<Config>,
  block: unknown,
  use: (channel: Channel.Channel) => Effect.Effect<A, E, R>,
  context: Partial<Channel.MakeContext> = {},
): Effect.Effect<A, E | Errors.ConfigError | Errors.MissingSecret, Exclude<R, Scope.Scope>> =>
  Effect.scoped(
    Effect.flatMap(
      Plugin.build(plugin, block, { name: channelName, file: pipelineFile, warn: () => {}, ...context }),
      use,
    ),
  )

/**
 * Every claimed model × size × aspect ratio, as requests (sizes and ratios default to 1K and 1:1).
 *
 * @category requests
 */
export const claimedRequests = (claims: {
  readonly models: ReadonlyArray<string>
  readonly sizes?: ReadonlyArray<Catalog.Size>
  readonly aspectRatios?: ReadonlyArray<Catalog.AspectRatio>
}): ReadonlyArray<Channel.ChannelRequest> =>
  claims.models.flatMap((model) =>
    (claims.sizes ?? (["1K"] as const)).flatMap((size) =>
      (claims.aspectRatios ?? (["1:1"] as const)).map((aspectRatio) =>
        sampleRequest({
          id: `conformance-${model}-${size}-${aspectRatio.replace(":", "x")}`,
          model,
          size,
          aspectRatio,
        }),
      ),
    ),
  )

/** Await a value a simulator method returned, whether or not it was a Promise. @category simulator */
export const settle = async <A>(value: A | Promise<A>): Promise<A> => await value

/** Requests the simulator recorded so far. @category simulator */
export const recordedRequests = (harness: Pick<Harness, "simulator">): Promise<ReadonlyArray<RecordedRequest>> =>
  settle(harness.simulator.requests())

/** The simulator's ledger now. @category simulator */
export const ledger = (harness: Pick<Harness, "simulator">): Promise<Ledger> => settle(harness.simulator.ledger())

/** Poll `probe` every 25 ms until it returns true or `timeoutMs` passes; true when it did. @category harness */
export const eventually = async (probe: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> => {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (await probe()) return true
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return probe()
}
