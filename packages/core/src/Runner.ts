/**
 * The runner: builds a loaded pipeline's channels (scoped, so SDK clients close), composes its stages
 * around `generate`, and runs one request or a stream of requests with bounded concurrency. Images are
 * written atomically (temporary file + rename) under `outDir`, named by request id or prompt hash —
 * never by raw prompt text — and a bulk run skips requests whose image is already there.
 *
 * @since 0.1.0
 */
import { existsSync } from "node:fs"
import { mkdir, rename, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Cause, Context, Effect, Exit, Layer, Schema, type Scope, Stream } from "effect"
import type { Channel } from "./Channel.ts"
import { type ConfigError, type MissingSecret, OutputError, type PipelineError } from "./Errors.ts"
import { hashOf, normalizePrompt } from "./internal/hash.ts"
import * as Pipeline from "./Pipeline.ts"
import type { Attempt, ImageRequest, ImageResult } from "./Request.ts"
import * as Stages from "./Stages.ts"

/** A request that failed, with every attempt made for it. @category errors */
export class RunFailure extends Schema.TaggedError<RunFailure>()("RunFailure", {
  id: Schema.String,
  error: Schema.Any,
  attempts: Schema.Array(Schema.Any),
}) {
  override get message(): string {
    const error = this.error as PipelineError
    return `${this.id}: ${error._tag}: ${error.message}`
  }
  /** The pipeline error that ended the request. */
  get reason(): PipelineError {
    return this.error as PipelineError
  }
}

/** What happened to one request of a bulk run. @category model */
export type Outcome =
  | { readonly _tag: "Done"; readonly request: ImageRequest; readonly result: ImageResult }
  | { readonly _tag: "Failed"; readonly request: ImageRequest; readonly failure: RunFailure }
  | { readonly _tag: "Skipped"; readonly request: ImageRequest; readonly id: string; readonly file: string }

/** @category model */
export interface RunnerOptions {
  /** Write each image here (created if missing). No files are written when unset. */
  readonly outDir?: string
}

/** @category model */
export interface RunnerShape {
  readonly pipeline: Pipeline.Pipeline
  readonly channels: ReadonlyMap<string, Channel>
  /** What plugins warned about while building their channels (settings they ignore, doubtful values). */
  readonly warnings: ReadonlyArray<string>
  /** Run one request through the pipeline. */
  readonly run: (request: ImageRequest) => Effect.Effect<ImageResult, RunFailure>
  /** Run many, at most `concurrency` at once; results in completion order. */
  readonly runAll: (
    requests: Stream.Stream<ImageRequest> | Iterable<ImageRequest>,
    options?: { readonly concurrency?: number },
  ) => Stream.Stream<Outcome>
}

const extensions: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "image/gif": "gif",
}

/**
 * The id a request is known by: its own `id`, else a hash of what it asks for. Stable across runs, so a
 * re-run of a bulk file finds the images it already made.
 *
 * @category ids
 */
export const requestId = (request: ImageRequest): string =>
  request.id ??
  `img-${hashOf([
    normalizePrompt(request.prompt),
    request.use ?? null,
    request.priority ?? null,
    request.model ?? null,
    request.size ?? null,
    request.aspectRatio ?? null,
  ]).slice(0, 20)}`

/** The file already written for `id` under `outDir`, if any. @category files */
export const existingImage = (outDir: string, id: string): string | undefined =>
  Object.values(extensions)
    .map((extension) => join(outDir, `${id}.${extension}`))
    .find((path) => existsSync(path))

/** Write bytes atomically: a temporary file in the same folder, then rename. @category files */
export const writeAtomically = (path: string, bytes: Uint8Array): Effect.Effect<void, OutputError> =>
  Effect.tryPromise({
    try: async () => {
      const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
      await writeFile(temporary, bytes)
      await rename(temporary, path)
    },
    catch: (error) =>
      new OutputError({
        path,
        message: `cannot write ${path}: ${error instanceof Error ? error.message : String(error)}`,
      }),
  })

/**
 * Build a runner for a loaded pipeline in the current Scope: every channel is made once and closed with
 * the Scope.
 *
 * @category constructors
 */
export const make = Effect.fn("Runner.make")(function* (
  pipeline: Pipeline.Pipeline,
  options: RunnerOptions = {},
): Effect.fn.Return<RunnerShape, ConfigError | MissingSecret, Scope.Scope> {
  const channels = new Map<string, Channel>()
  const warnings: Array<string> = []
  for (const declaration of pipeline.channels) {
    const warn = (message: string) => {
      warnings.push(`${pipeline.file}: channels.${declaration.name}: ${message}`)
    }
    const channel = yield* declaration.plugin.make(declaration.config, {
      name: declaration.name,
      file: pipeline.file,
      warn,
    })
    channels.set(declaration.name, channel)
  }
  const context: Stages.StageContext = { channels }
  const declared = pipeline.stages.map((stage) => stage.definition.make(stage.config, context))
  const hasGenerate = pipeline.stages.some((stage) => stage.definition.terminal === true)
  const innermost: Stages.Handler = hasGenerate
    ? () => Effect.die(new Error("generate is innermost and never calls next"))
    : Stages.generate.make({}, context)(() => Effect.die(new Error("unreachable")))
  const handler = Stages.compose(declared, innermost)

  const writeResult = (result: ImageResult): Effect.Effect<ImageResult, OutputError> => {
    if (options.outDir === undefined) return Effect.succeed(result)
    const outDir = options.outDir
    const file = join(outDir, `${result.id}.${extensions[result.mimeType] ?? "bin"}`)
    return Effect.tryPromise({
      try: () => mkdir(outDir, { recursive: true }),
      catch: (error) => new OutputError({ path: outDir, message: `cannot create ${outDir}: ${String(error)}` }),
    }).pipe(Effect.andThen(writeAtomically(file, result.bytes)), Effect.as({ ...result, file }))
  }

  const run = (request: ImageRequest): Effect.Effect<ImageResult, RunFailure> => {
    const attempts: Array<Attempt> = []
    const id = requestId(request)
    return handler({ id, request, attempts }).pipe(
      Effect.flatMap(writeResult),
      Effect.mapError((error) => new RunFailure({ id, error, attempts })),
      Effect.withSpan("Runner.run", { attributes: { id } }),
    )
  }

  const runOne = (request: ImageRequest): Effect.Effect<Outcome> => {
    const id = requestId(request)
    const existing = options.outDir === undefined ? undefined : existingImage(options.outDir, id)
    if (existing !== undefined) return Effect.succeed({ _tag: "Skipped", request, id, file: existing })
    return Effect.exit(run(request)).pipe(
      Effect.flatMap((exit): Effect.Effect<Outcome> => {
        if (Exit.isSuccess(exit)) return Effect.succeed({ _tag: "Done", request, result: exit.value })
        const failure = Cause.findErrorOption(exit.cause)
        return failure._tag === "Some"
          ? Effect.succeed({ _tag: "Failed", request, failure: failure.value })
          : Effect.failCause(exit.cause as Cause.Cause<never>)
      }),
    )
  }

  const runAll: RunnerShape["runAll"] = (requests, runOptions = {}) => {
    const stream = Stream.isStream(requests) ? requests : Stream.fromIterable(requests)
    return stream.pipe(
      Stream.mapEffect(runOne, { concurrency: Math.max(1, runOptions.concurrency ?? 4), unordered: true }),
    )
  }

  return { pipeline, channels, warnings, run, runAll }
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
