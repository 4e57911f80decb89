/**
 * The runner: builds a loaded pipeline's channels and stages in a Scope (so SDK clients, files and
 * fibers close with it), plans each request once ({@link Plan}), runs the plan through the request-level
 * stages and the terminal `generate` with a fresh attempt {@link Journal}, writes the image the moment it
 * is checked, and returns a result whose `attempts`, `costUsd` and `latencyMs` all come from the journal.
 *
 * A failure is a {@link RunFailure} carrying the typed error, every attempt and what they cost (billed
 * failures included).
 *
 * @since 0.1.0
 */
import { dirname } from "node:path"
import { Attempt } from "@peel/contract/Attempt"
import type { Channel, ReferenceImage } from "@peel/contract/Channel"
import {
  type ConfigError,
  InvalidRequest,
  type MissingSecret,
  type OutputError,
  PipelineError,
} from "@peel/contract/Errors"
import { expand, type ImageRequest, type ImageResult } from "@peel/contract/Request"
import { Cause, Context, Effect, Exit, Layer, Schema, type Scope, Stream, Tracer } from "effect"
import * as Pipeline from "../config/Pipeline.ts"
import { Journal, type JournalShape, make as makeJournal } from "../engine/AttemptJournal.ts"
import {
  compose,
  type Generated,
  type Handler,
  type Middleware,
  type Stage,
  type StageContext,
} from "../engine/Stage.ts"
import * as Output from "../output/Output.ts"
import * as Identity from "../plan/Identity.ts"
import * as Inputs from "../plan/Inputs.ts"
import * as Plan from "../plan/Plan.ts"
import { makeHandler } from "../stages/generate.ts"
import * as OutputLookup from "../state/OutputLookup.ts"
import * as State from "../state/State.ts"

/** A request that failed, with every attempt made for it and what they cost. @category errors */
export class RunFailure extends Schema.TaggedError<RunFailure>()("RunFailure", {
  id: Schema.String,
  error: PipelineError,
  attempts: Schema.Array(Attempt),
  /** What the failed request cost: every billed attempt. */
  costUsd: Schema.Number,
  latencyMs: Schema.Number,
}) {
  override get message(): string {
    return `${this.id}: ${this.error._tag}: ${this.error.message}`
  }
  /** The pipeline error that ended the request. */
  get reason(): PipelineError {
    return this.error
  }
}

/** What happened to one request of a bulk run. @category model */
export type Outcome =
  | { readonly _tag: "Done"; readonly request: ImageRequest; readonly result: ImageResult }
  | { readonly _tag: "Failed"; readonly request: ImageRequest; readonly failure: RunFailure }
  | { readonly _tag: "Skipped"; readonly request: ImageRequest; readonly id: string; readonly file: string }

/**
 * A request planned once for a run: its plan, or why it cannot be made (nothing was called). Bulk runs,
 * batch work, resume and the Promise API make it with {@link RunnerShape.prepare} and hand it to
 * {@link RunnerShape.runPlanned} or {@link RunnerShape.runAll}: the reference images are read (or
 * downloaded) once, when it is made.
 *
 * @category model
 */
export interface Planned {
  readonly _tag: "Planned"
  readonly request: ImageRequest
  readonly id: string
  readonly plan: Plan.Plan | InvalidRequest
  /** The reference images could not be loaded (missing, unreadable, not an image): `plan` says why. */
  readonly badImages: boolean
}

/** A planned request or one still to plan. @category model */
export const isPlanned = (value: ImageRequest | Planned): value is Planned =>
  "_tag" in value && value._tag === "Planned"

/** @category model */
export interface RunnerOptions {
  /** Write each image here (created and probed when the runner is built). No files are written when unset. */
  readonly outDir?: string
  /** An output folder already opened by the caller (takes precedence over `outDir`). */
  readonly output?: Output.OutputDirectory
  /** ISO date for mapping retired model ids; today by default. */
  readonly today?: string
  /** Who wants to hear about each attempt and each finished request (call log, metrics, progress). */
  readonly observers?: ReadonlyArray<Observer>
  /** Folder that relative reference-image paths are read from; the working directory by default. */
  readonly baseDir?: string
  /**
   * The state services' Layers (breakers, limits, pauses, cache, ledger…); {@link State.layerMemory} by
   * default. Several runners given the same built Layer share their state.
   */
  readonly state?: Layer.Layer<State.Services, ConfigError>
}

/**
 * Hears every attempt the moment the journal records it, and every request when it ends. Called
 * synchronously: keep it cheap (buffer, count), never throw.
 *
 * @category model
 */
export interface Observer {
  readonly attempt?: (request: { readonly id: string; readonly plan: Plan.Plan }, attempt: Attempt) => void
  readonly done?: (
    plan: Plan.Plan | undefined,
    outcome:
      | { readonly _tag: "Done"; readonly result: ImageResult }
      | { readonly _tag: "Failed"; readonly failure: RunFailure },
  ) => void
}

/** @category model */
export interface RunnerShape {
  readonly pipeline: Pipeline.Pipeline
  readonly channels: ReadonlyMap<string, Channel>
  /**
   * The state services this runner decides with (built once from {@link RunnerOptions.state} or the
   * pipeline's `state:` block), for readers beside the engine: a gateway's status page reads the breakers'
   * circuits and the channel statistics here.
   */
  readonly state: Context.Context<State.Services>
  /** What plugins warned about while building their channels (settings they ignore, doubtful values). */
  readonly warnings: ReadonlyArray<string>
  /** Plan a request without calling anybody (`--dry-run`, estimates). */
  readonly plan: (request: ImageRequest) => Effect.Effect<Plan.Plan, InvalidRequest>
  /**
   * Plan a request once for a run, without calling anybody: one {@link Planned} per image it asks for
   * (`n` images are ID-1 … ID-n), its reference images loaded once for all of them.
   */
  readonly prepare: (request: ImageRequest) => Effect.Effect<ReadonlyArray<Planned>>
  /** Run one request through the pipeline. */
  readonly run: (request: ImageRequest) => Effect.Effect<ImageResult, RunFailure>
  /**
   * What the output folder holds for a request, by its identity (`Identity.of(plan)`: the request is
   * planned, its reference images read, unless it comes planned); Missing when the runner writes no files
   * or the request cannot be planned.
   */
  readonly lookup: (request: ImageRequest | Planned) => Effect.Effect<Output.Lookup>
  /** Run a request planned earlier ({@link prepare}, {@link plan}): it is not planned again. */
  readonly runPlanned: (planned: Planned | Plan.Plan) => Effect.Effect<ImageResult, RunFailure>
  /**
   * Run many, at most `concurrency` at once; results in completion order. Each request is planned once
   * (a {@link Planned} is not planned again); one whose image is already in the output folder, made from
   * the same identity, is skipped.
   */
  readonly runAll: (
    requests: Stream.Stream<ImageRequest | Planned> | Iterable<ImageRequest | Planned>,
    options?: {
      readonly concurrency?: number
      /** Skip what the output folder already holds (default true); false when the caller checked already. */
      readonly resume?: boolean
    },
  ) => Stream.Stream<Outcome>
}

/** @category ids */
export const requestId = Plan.requestId

/** Write bytes atomically: a temporary file in the same folder, then rename. @category files */
export const writeAtomically = Output.writeAtomically

/**
 * Build a runner for a loaded pipeline in the current Scope: every channel and stage is made once and
 * closed with the Scope.
 *
 * @category constructors
 */
export const make = Effect.fn("Runner.make")(function* (
  pipeline: Pipeline.Pipeline,
  options: RunnerOptions = {},
): Effect.fn.Return<RunnerShape, ConfigError | MissingSecret | OutputError, Scope.Scope> {
  const channels = new Map<string, Channel>()
  const warnings: Array<string> = []
  for (const declaration of pipeline.channels) {
    const warn = (message: string) => {
      warnings.push(`${pipeline.file}: channels.${declaration.name}: ${message}`)
    }
    const channel = yield* declaration.make({
      name: declaration.name,
      file: pipeline.file,
      warn,
    })
    channels.set(declaration.name, channel)
  }
  const today = options.today ?? new Date().toISOString().slice(0, 10)
  const context: StageContext = { channels, pipelineFile: pipeline.file, pipelineDir: dirname(pipeline.file), today }
  const stages: Array<Stage> = []
  // One set of state services for every stage of this runner: memory unless the caller chose other Layers.
  const services = yield* Layer.build(options.state ?? State.layerOf(pipeline.state, pipeline.file))
  const outputLookup = Context.get(services, OutputLookup.OutputLookup)
  for (const declaration of pipeline.stages)
    stages.push(yield* declaration.make(context).pipe(Effect.provideContext(services)))
  const planners = stages.flatMap((stage) => (stage.plan === undefined ? [] : [stage.plan]))
  const middleware = stages.flatMap((stage): Array<Middleware> => (stage.around === undefined ? [] : [stage.around]))
  const terminal: Handler = stages.find((stage) => stage.handler !== undefined)?.handler ?? makeHandler(context)
  const handler = compose(middleware, terminal)
  const limits = pipeline.limits
  const observers = options.observers ?? []
  const output = options.output ?? (options.outDir === undefined ? undefined : yield* Output.open(options.outDir))

  const planOf = (
    request: ImageRequest,
    id: string,
    images: ReadonlyArray<ReferenceImage> | InvalidRequest = [],
  ): Plan.Plan | InvalidRequest => {
    if (images instanceof InvalidRequest) return images
    if ((request.n ?? 1) > 1)
      return new InvalidRequest({ message: `${id}: n > 1 makes several images: run it with runAll (or generateAll)` })
    const started = Plan.start(request, limits, today, id)
    if (started instanceof InvalidRequest) return started
    const badOptions = Inputs.checkProviderOptions(request, id, channels)
    if (badOptions !== undefined) return badOptions
    return Plan.finish(
      planners.reduce((draft, plan) => plan(draft), started),
      channels,
      limits,
      images,
    )
  }

  /** Reference images loaded and checked (or why not), before planning: nothing is called for a bad one. */
  const imagesOf = (
    request: ImageRequest,
    id: string,
  ): Effect.Effect<ReadonlyArray<ReferenceImage> | InvalidRequest> =>
    request.images === undefined || request.images.length === 0
      ? Effect.succeed([])
      : Inputs.loadImages(request, id, { baseDir: options.baseDir, network: pipeline.network }).pipe(
          Effect.catch((invalid) => Effect.succeed(invalid)),
        )

  const toResult = (plan: Plan.Plan, done: Generated, journal: JournalShape, now: number, file?: string) => {
    const usage = done.image.usage
    const result: ImageResult = {
      id: plan.id,
      bytes: done.image.bytes,
      ...(file === undefined ? {} : { file }),
      mimeType: done.info.mimeType,
      width: done.info.width,
      height: done.info.height,
      model: done.model,
      channel: done.channel,
      size: done.size,
      aspectRatio: done.aspectRatio,
      cached: done.cached,
      placeholder: done.placeholder,
      costUsd: journal.costUsd(),
      ...(usage === undefined ? {} : { usage }),
      latencyMs: now - journal.startedAt,
      attempts: journal.attempts(),
      ...(plan.adjustments.length === 0 ? {} : { adjustments: plan.adjustments }),
      ...(done.image.text === undefined ? {} : { text: done.image.text }),
      promptHash: plan.promptHash,
    }
    return result
  }

  const planned = (
    request: ImageRequest,
    id: string,
    images: ReadonlyArray<ReferenceImage> | InvalidRequest,
  ): Planned => ({
    _tag: "Planned",
    request,
    id,
    plan: planOf(request, id, images),
    badImages: images instanceof InvalidRequest,
  })

  const prepare = (request: ImageRequest): Effect.Effect<ReadonlyArray<Planned>> => {
    const id = Plan.requestId(request)
    return Effect.map(imagesOf(request, id), (images) =>
      expand(request, id).map((one) => planned(one, Plan.requestId(one), images)),
    )
  }

  const runWith = (request: ImageRequest, id: string): Effect.Effect<ImageResult, RunFailure> =>
    Effect.flatMap(imagesOf(request, id), (images) => execute(id, planOf(request, id, images)))

  const execute = (id: string, planned: Plan.Plan | InvalidRequest): Effect.Effect<ImageResult, RunFailure> =>
    // The clock is read directly (no effect per reading): this runs for every request.
    Effect.clockWith((clock) => {
      const startedAt = clock.currentTimeMillisUnsafe()
      const plan = planned instanceof InvalidRequest ? undefined : planned
      const journal = makeJournal(
        startedAt,
        observers.length === 0 || plan === undefined
          ? undefined
          : (attempt) => {
              for (const observer of observers) observer.attempt?.({ id, plan }, attempt)
            },
      )
      const fail = (error: PipelineError) => {
        const failure = new RunFailure({
          id,
          error,
          attempts: journal.attempts(),
          costUsd: journal.costUsd(),
          latencyMs: clock.currentTimeMillisUnsafe() - startedAt,
        })
        for (const observer of observers) observer.done?.(plan, { _tag: "Failed", failure })
        return Effect.fail(failure)
      }
      if (plan === undefined) return fail(planned as InvalidRequest)
      return handler(plan).pipe(
        // The image goes to disk the moment it is checked, before any other bookkeeping.
        Effect.flatMap((done): Effect.Effect<ImageResult, OutputError> => {
          const finish = (file?: string) => {
            const result = toResult(plan, done, journal, clock.currentTimeMillisUnsafe(), file)
            for (const observer of observers) observer.done?.(plan, { _tag: "Done", result })
            return result
          }
          if (output === undefined) return Effect.succeed(finish())
          return Effect.map(
            // A paid-for image is written whatever happens to the request now (drain time, second signal).
            Effect.uninterruptible(
              output
                .write(
                  plan.id,
                  Identity.of(plan),
                  done.image.bytes,
                  done.info.mimeType,
                  done.placeholder ? { placeholder: true } : undefined,
                )
                .pipe(
                  Effect.tap((file) =>
                    outputLookup.record(output.dir, plan.id, file, {
                      hash: Identity.of(plan),
                      placeholder: done.placeholder,
                    }),
                  ),
                ),
            ),
            finish,
          )
        }),
        Effect.provideService(Journal, journal),
        Effect.catch(fail),
      )
    })

  // A span only when a tracing backend is installed: without one, nothing reads it. A request without
  // reference images is planned at once (nothing to read first).
  const run = (request: ImageRequest): Effect.Effect<ImageResult, RunFailure> =>
    Effect.withFiber((fiber) => {
      const id = Plan.requestId(request)
      const running =
        request.images === undefined || request.images.length === 0
          ? execute(id, planOf(request, id, []))
          : runWith(request, id)
      return fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer
        ? running
        : running.pipe(Effect.withSpan("Runner.run", undefined, { captureStackTrace: false }))
    })

  const runPlanned = (item: Planned | Plan.Plan): Effect.Effect<ImageResult, RunFailure> =>
    execute(item.id, "_tag" in item ? item.plan : item).pipe(
      Effect.withSpan("Runner.run", undefined, { captureStackTrace: false }),
    )

  /** What the output folder holds for a planned request, by the request identity (the state's OutputLookup). */
  const found = (item: Planned): Effect.Effect<Output.Lookup> =>
    output === undefined || item.plan instanceof InvalidRequest
      ? Effect.succeed({ _tag: "Missing" })
      : outputLookup.lookup(output.dir, item.id, Identity.of(item.plan), Output.requestHash(item.request))

  // Resume: an image is skipped when the folder holds one made from the same identity — which needs the
  // plan (reference images read once, when it was made, and the plan reused to make the image otherwise).
  const runOne = (item: Planned, resume: boolean): Effect.Effect<Outcome> => {
    const { request, id } = item
    const made = Effect.exit(execute(id, item.plan)).pipe(
      Effect.flatMap((exit): Effect.Effect<Outcome> => {
        if (Exit.isSuccess(exit)) return Effect.succeed({ _tag: "Done", request, result: exit.value })
        const failure = Cause.findErrorOption(exit.cause)
        return failure._tag === "Some"
          ? Effect.succeed({ _tag: "Failed", request, failure: failure.value })
          : Effect.failCause(exit.cause as Cause.Cause<never>)
      }),
    )
    if (!resume) return made
    return Effect.flatMap(found(item), (lookup) =>
      lookup._tag === "Current" ? Effect.succeed<Outcome>({ _tag: "Skipped", request, id, file: lookup.file }) : made,
    )
  }

  const lookup = (item: ImageRequest | Planned): Effect.Effect<Output.Lookup> => {
    if (isPlanned(item)) return found(item)
    const id = Plan.requestId(item)
    return Effect.flatMap(imagesOf(item, id), (images) => found(planned(item, id, images)))
  }

  const runAll: RunnerShape["runAll"] = (requests, runOptions = {}) => {
    const stream = Stream.isStream(requests) ? requests : Stream.fromIterable(requests)
    return stream.pipe(
      // Planned once: n images of one request are n requests, ID-1 … ID-n, their reference images read once.
      Stream.flatMap((item) =>
        isPlanned(item) ? Stream.succeed(item) : Stream.flatMap(Stream.fromEffect(prepare(item)), Stream.fromIterable),
      ),
      Stream.mapEffect((item) => runOne(item, runOptions.resume ?? true), {
        concurrency: Math.max(1, runOptions.concurrency ?? 4),
        unordered: true,
      }),
    )
  }

  const plan = (request: ImageRequest): Effect.Effect<Plan.Plan, InvalidRequest> => {
    const id = Plan.requestId(request)
    return Effect.flatMap(imagesOf(request, id), (images) => {
      const planned = planOf(request, id, images)
      return planned instanceof InvalidRequest ? Effect.fail(planned) : Effect.succeed(planned)
    })
  }

  return { pipeline, channels, state: services, warnings, plan, prepare, run, runPlanned, runAll, lookup }
})

/**
 * The runner as a service, for programs that compose Layers.
 *
 * @category services
 */
export class Runner extends Context.Service<Runner, RunnerShape>()("@peel/core/Runner") {
  /** Load the pipeline file and build its runner; channels close when the Layer is released. */
  static readonly layer = (path: string, options: RunnerOptions & Pipeline.LoadOptions = {}) =>
    Layer.effect(
      Runner,
      Effect.flatMap(Pipeline.load(path, options), (pipeline) => make(pipeline, options)),
    )
}

/** Run one request with the `Runner` service. @category accessors */
export const run = (request: ImageRequest): Effect.Effect<ImageResult, RunFailure, Runner> =>
  Effect.flatMap(Runner, (runner) => runner.run(request))
