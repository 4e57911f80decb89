/**
 * A session: what every command and server does before its first request — load the pipeline, open the
 * output folder (created and proven writable before anything is paid for), build the runner, and gather
 * what the loader and the channel plugins warned about — in that order, once, in the caller's Scope.
 *
 * Warnings are handed to `onWarning` the moment they are known (the pipeline's before anything else is
 * tried), already formatted as one line each, and kept on the session. A failure is the first step's
 * typed error: `ConfigError` (every problem, located), `OutputError`, `MissingSecret`, or the error of the
 * caller's `observers` effect.
 *
 * ```ts
 * const session = yield* Session.open("pipelines/realtime.yaml", { out: "./out" })
 * const result = yield* session.runner.run({ prompt: "a red fox" })
 * ```
 *
 * @since 0.4.0
 */
import type { ConfigError, MissingSecret, OutputError } from "@peel/contract/Errors"
import { Effect, type Scope } from "effect"
import * as Pipeline from "../config/Pipeline.ts"
import * as Output from "../output/Output.ts"
import * as Runner from "./Runner.ts"

/** @category models */
export interface Session {
  readonly pipeline: Pipeline.Pipeline
  readonly runner: Runner.RunnerShape
  /** The output folder, when `out` was given. */
  readonly output: Output.OutputDirectory | undefined
  /** Every warning of the loader and of the channel plugins, one line each (`FILE:LINE:COL: warning: ...`, `warning: ...`). */
  readonly warnings: ReadonlyArray<string>
}

/** @category models */
export interface OpenOptions<E = never, R = never> {
  /** Output folder for images; none (nothing written) when unset. */
  readonly out?: string | undefined
  /** How the pipeline is loaded (environment, plugins, offline). */
  readonly load?: Pipeline.LoadOptions | undefined
  /** Runner options besides the output folder and observers (state Layers, base folder, date). */
  readonly runner?: Omit<Runner.RunnerOptions, "output" | "outDir" | "observers"> | undefined
  /** Who hears each attempt, built after the output folder opened and before the runner is made (a call log). */
  readonly observers?: Effect.Effect<ReadonlyArray<Runner.Observer>, E, R | Scope.Scope> | undefined
  /** Called with each warning as soon as it is known. */
  readonly onWarning?: ((line: string) => void) | undefined
}

/** Why a session could not be opened: the first step that failed. @category errors */
export type OpenError<E = never> = ConfigError | MissingSecret | OutputError | E

/**
 * Load, open, build: the runner and its channels close with the Scope.
 *
 * @category constructors
 */
export const open = <E = never, R = never>(
  pipelineFile: string,
  options: OpenOptions<E, R> = {},
): Effect.Effect<Session, OpenError<E>, R | Scope.Scope> =>
  Effect.gen(function* () {
    const warnings: Array<string> = []
    const warn = (line: string) => {
      warnings.push(line)
      options.onWarning?.(line)
    }
    const pipeline = yield* Pipeline.load(pipelineFile, options.load ?? {})
    for (const problem of pipeline.warnings) warn(problem.format())
    const output = options.out === undefined ? undefined : yield* Output.open(options.out)
    const observers = options.observers === undefined ? undefined : yield* options.observers
    const runner = yield* Runner.make(pipeline, {
      ...options.runner,
      ...(output === undefined ? {} : { output }),
      ...(observers === undefined ? {} : { observers }),
    })
    for (const warning of runner.warnings) warn(`warning: ${warning}`)
    return { pipeline, runner, output, warnings }
  })
