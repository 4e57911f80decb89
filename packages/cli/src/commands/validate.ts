/**
 * `peel validate FILE...`: load each pipeline with every check the runner would make (plugins loaded,
 * channel blocks and stages decoded strictly, `${VAR}` resolved) and print every problem as
 * `FILE:LINE:COL: message` on stderr. Exit 2 when any file has an error.
 *
 * @since 0.1.0
 */
import { Pipeline } from "@peel/core"
import { Effect, Result } from "effect"
import { ExitCode, printProblems } from "../output.ts"
import { loadOptions } from "../plugins.ts"

export const validate = Effect.fn("validate")(function* (files: ReadonlyArray<string>) {
  let failed = false
  for (const file of files) {
    const loaded = yield* Effect.result(Pipeline.load(file, loadOptions))
    if (Result.isFailure(loaded)) {
      failed = true
      printProblems(loaded.failure.problems)
      continue
    }
    printProblems(loaded.success.warnings)
    const pipeline = loaded.success
    process.stdout.write(
      `${file}: ok (${pipeline.channels.length} channel${pipeline.channels.length === 1 ? "" : "s"}, ${pipeline.stages.length} stage${pipeline.stages.length === 1 ? "" : "s"}${
        pipeline.warnings.length > 0
          ? `, ${pipeline.warnings.length} warning${pipeline.warnings.length === 1 ? "" : "s"}`
          : ""
      })\n`,
    )
  }
  return failed ? ExitCode.usage : ExitCode.ok
})
