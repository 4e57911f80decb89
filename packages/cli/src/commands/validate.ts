/**
 * `peel validate FILE...`: load each pipeline with every check the runner would make (plugins loaded,
 * channel blocks and stages decoded strictly, `${VAR}` resolved) and print every problem as
 * `FILE:LINE:COL: message` on stderr, then build each channel (nothing is called) and print what the plugins
 * warn about as `FILE: channels.NAME: warning: message`. Exit 2 when any file has an error; warnings
 * leave it 0. `--offline` checks structure, plugins and cross-references without secrets: an unset
 * `${VAR}` is no error (CI can lint committed pipelines). Online, a `state: { postgres }` server must answer.
 *
 * @since 0.1.0
 */
import { Pipeline, State } from "@peel/core"
import { Effect, Result } from "effect"
import { ExitCode, printProblems } from "../output.ts"
import { loadOptions } from "../plugins.ts"

/**
 * What the plugins warn about while building their channels (a placeholder-looking key, settings they
 * ignore), as `FILE: channels.NAME: warning: message`. Each channel is built exactly as a run builds it, in
 * a Scope closed at once; nothing is called.
 */
const pluginWarnings = (pipeline: Pipeline.Pipeline) =>
  Effect.result(
    Effect.scoped(
      Effect.gen(function* () {
        const warnings: Array<string> = []
        for (const declaration of pipeline.channels)
          yield* declaration.make({
            name: declaration.name,
            file: pipeline.file,
            warn: (message) => {
              warnings.push(`${pipeline.file}: channels.${declaration.name}: warning: ${message}`)
            },
          })
        return warnings
      }),
    ),
  )

export const validate = Effect.fn("validate")(function* (
  files: ReadonlyArray<string>,
  options: { readonly offline?: boolean } = {},
) {
  let failed = false
  const offline = options.offline === true
  for (const file of files) {
    const loaded = yield* Effect.result(Pipeline.load(file, { ...loadOptions, offline }))
    if (Result.isFailure(loaded)) {
      failed = true
      printProblems(loaded.failure.problems)
      continue
    }
    printProblems(loaded.success.warnings)
    const pipeline = loaded.success
    // Offline, the channels are built too (plugins' own checks), but their warnings about placeholder
    // secrets are noise: only failures count.
    const built = Result.map(yield* pluginWarnings(pipeline), (warnings) => (offline ? [] : warnings))
    if (Result.isFailure(built)) {
      failed = true
      if (built.failure._tag === "ConfigError") printProblems(built.failure.problems)
      else process.stderr.write(`${file}: ${built.failure.message}\n`)
      continue
    }
    for (const warning of built.success) process.stderr.write(`${warning}\n`)
    // The stores its state: block names answer (not offline: the URL is usually a secret from the environment).
    const postgres = pipeline.state?.postgres
    if (!offline && postgres !== undefined) {
      const problem = yield* State.checkPostgres(postgres)
      if (problem !== undefined) {
        failed = true
        process.stderr.write(`${file}: state.postgres: ${problem}\n`)
        continue
      }
    }
    // Redis, when the state: block names it, must answer too.
    const unreachable = offline ? [] : yield* State.check(pipeline.state)
    if (unreachable.length > 0) {
      failed = true
      for (const problem of unreachable) process.stderr.write(`${file}: state: ${problem}\n`)
      continue
    }
    const warnings = pipeline.warnings.length + built.success.length
    process.stdout.write(
      `${file}: ok${offline ? " offline" : ""} (${pipeline.channels.length} channel${pipeline.channels.length === 1 ? "" : "s"}, ${pipeline.stages.length} stage${pipeline.stages.length === 1 ? "" : "s"}${
        warnings > 0 ? `, ${warnings} warning${warnings === 1 ? "" : "s"}` : ""
      })\n`,
    )
  }
  return failed ? ExitCode.usage : ExitCode.ok
})
