/**
 * `peel run FILE --prompt TEXT ...` (one request) and `peel run FILE --input REQUESTS.jsonl` (bulk, bounded
 * concurrency, resumable: requests whose image is already in `--out` are skipped). Every JSONL line is
 * decoded with the ImageRequest Schema before anything is spent: one bad line stops the run with exit 2.
 *
 * @since 0.1.0
 */
import { existsSync, readFileSync } from "node:fs"
import { Pipeline, Request, Runner } from "@peel/core"
import { Effect, Result, Stream } from "effect"
import { ExitCode, jsonOf, makeProgress, printProblems, type Row, rowOf, table } from "../output.ts"
import { loadOptions } from "../plugins.ts"

export interface RunOptions {
  readonly file: string
  readonly prompt?: string
  readonly input?: string
  readonly use?: string
  readonly priority?: string
  readonly urgency?: string
  readonly size?: string
  readonly aspectRatio?: string
  readonly model?: string
  readonly id?: string
  readonly out: string
  readonly json: boolean
  readonly concurrency: number
}

/** Read and validate a JSONL file of ImageRequests; all problems as `FILE:LINE: message`. */
const readRequests = (path: string): Result.Result<ReadonlyArray<Request.ImageRequest>, ReadonlyArray<string>> => {
  if (!existsSync(path)) return Result.fail([`${path}: file not found`])
  const requests: Array<Request.ImageRequest> = []
  const problems: Array<string> = []
  const ids = new Map<string, number>()
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((text, index) => {
      const line = index + 1
      if (text.trim() === "") return
      const decoded = Request.decodeRequestLine(text)
      if (Result.isFailure(decoded)) {
        problems.push(`${path}:${line}: ${decoded.failure}`)
        return
      }
      const id = Runner.requestId(decoded.success)
      const earlier = ids.get(id)
      if (earlier !== undefined) {
        problems.push(`${path}:${line}: duplicate request id "${id}" (first on line ${earlier})`)
        return
      }
      ids.set(id, line)
      requests.push(decoded.success)
    })
  if (problems.length > 0) return Result.fail(problems)
  if (requests.length === 0) return Result.fail([`${path}: no requests (expected one JSON ImageRequest per line)`])
  return Result.succeed(requests)
}

const singleRequest = (options: RunOptions): Result.Result<Request.ImageRequest, string> =>
  Result.mapError(
    Request.decodeRequest({
      prompt: options.prompt,
      ...(options.id === undefined ? {} : { id: options.id }),
      ...(options.use === undefined ? {} : { use: options.use }),
      ...(options.priority === undefined ? {} : { priority: options.priority }),
      ...(options.urgency === undefined ? {} : { urgency: options.urgency }),
      ...(options.size === undefined ? {} : { size: options.size }),
      ...(options.aspectRatio === undefined ? {} : { aspectRatio: options.aspectRatio }),
      ...(options.model === undefined ? {} : { model: options.model }),
    }),
    (message) => `peel run: invalid request: ${message}`,
  )

export const run = Effect.fn("run")(function* (options: RunOptions) {
  if ((options.prompt === undefined) === (options.input === undefined)) {
    process.stderr.write("peel run: give exactly one of --prompt TEXT or --input REQUESTS.jsonl\n")
    return ExitCode.usage
  }
  let requests: ReadonlyArray<Request.ImageRequest>
  if (options.input !== undefined) {
    const read = readRequests(options.input)
    if (Result.isFailure(read)) {
      for (const problem of read.failure) process.stderr.write(`${problem}\n`)
      return ExitCode.usage
    }
    requests = read.success
  } else {
    const request = singleRequest(options)
    if (Result.isFailure(request)) {
      process.stderr.write(`${request.failure}\n`)
      return ExitCode.usage
    }
    requests = [request.success]
  }

  const loaded = yield* Effect.result(Pipeline.load(options.file, loadOptions))
  if (Result.isFailure(loaded)) {
    printProblems(loaded.failure.problems)
    return ExitCode.usage
  }
  printProblems(loaded.success.warnings)

  return yield* Effect.scoped(
    Effect.gen(function* () {
      const built = yield* Effect.result(Runner.make(loaded.success, { outDir: options.out }))
      if (Result.isFailure(built)) {
        const error = built.failure
        if (error._tag === "ConfigError") printProblems(error.problems)
        else process.stderr.write(`${options.file}: ${error.message}\n`)
        return ExitCode.usage
      }
      const runner = built.success
      for (const warning of runner.warnings) process.stderr.write(`warning: ${warning}\n`)
      const bulk = options.input !== undefined
      const progress = makeProgress(bulk ? requests.length : undefined)
      const rows: Array<Row> = []
      yield* runner.runAll(requests, { concurrency: options.concurrency }).pipe(
        Stream.runForEach((outcome) =>
          Effect.sync(() => {
            progress.update(outcome)
            if (options.json) process.stdout.write(`${JSON.stringify(jsonOf(outcome))}\n`)
            else rows.push(rowOf(outcome))
            if (outcome._tag === "Failed" && !options.json) process.stderr.write(`${outcome.failure.message}\n`)
          }),
        ),
      )
      progress.finish()
      const counts = progress.counts()
      if (!options.json) {
        process.stdout.write(`${table(rows)}\n`)
        process.stdout.write(
          `${counts.done} made, ${counts.skipped} skipped, ${counts.failed} failed; spent $${counts.spent.toFixed(4)}\n`,
        )
      }
      return counts.failed > 0 ? ExitCode.failed : ExitCode.ok
    }),
  )
})
