/**
 * The one reader of request files: JSON Lines, one `ImageRequest` per line, each decoded strictly with the
 * request Schema. Every problem is reported at once, located as `FILE:LINE: message`; nothing is returned
 * unless every line is good. Blank lines are skipped, a UTF-8 byte order mark on line 1 is accepted
 * (editors on Windows add one), and two lines whose ids differ only in case are duplicates (`CON` and
 * `con` name one file on macOS and Windows).
 *
 * `peel run --input`, `peel batch submit`, `peel estimate --input`, the embedding API and the gateway read
 * requests through {@link read} (a file) or {@link parse} (text in hand).
 *
 * @since 0.4.0
 */
import type { ImageRequest } from "@peel/contract/Request"
import { decodeRequestLine } from "@peel/contract/Request"
import { Effect, FileSystem, Result, Schema } from "effect"
import * as Files from "../internal/Files.ts"
import { requestId } from "../plan/Plan.ts"

/** One problem of a request file: where (the file, and the line when it is about one) and what. @category models */
export class RequestProblem extends Schema.Class<RequestProblem>("RequestProblem")({
  source: Schema.String,
  line: Schema.optional(Schema.Number),
  message: Schema.String,
}) {
  /** `FILE:LINE: message` (`FILE: message` when it is about the whole file). */
  format(): string {
    return `${this.source}${this.line === undefined ? "" : `:${this.line}`}: ${this.message}`
  }
}

/** A request file that cannot be used: every problem found in it. @category errors */
export class InvalidRequests extends Schema.TaggedError<InvalidRequests>()("InvalidRequests", {
  problems: Schema.Array(RequestProblem),
}) {
  readonly retryable = false
  override get message(): string {
    return this.problems.map((problem) => problem.format()).join("\n")
  }
}

/** @category models */
export interface ParseOptions {
  /** Refuse two lines with the same id (default true: the id names the output file). */
  readonly uniqueIds?: boolean | undefined
}

/**
 * Decode JSON Lines text into requests; `source` names it in problems (a file name, `request body`).
 *
 * @category decoding
 */
export const parse = (
  text: string,
  source: string,
  options: ParseOptions = {},
): Result.Result<ReadonlyArray<ImageRequest>, InvalidRequests> => {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  const requests: Array<ImageRequest> = []
  const problems: Array<RequestProblem> = []
  /** Lower-cased id → the line and spelling that first used it. */
  const ids = new Map<string, { readonly line: number; readonly id: string }>()
  const unique = options.uniqueIds ?? true
  body.split("\n").forEach((content, index) => {
    const line = index + 1
    if (content.trim() === "") return
    const decoded = decodeRequestLine(content)
    if (Result.isFailure(decoded)) {
      problems.push(new RequestProblem({ source, line, message: decoded.failure }))
      return
    }
    if (unique) {
      const id = requestId(decoded.success)
      const earlier = ids.get(id.toLowerCase())
      if (earlier !== undefined) {
        problems.push(
          new RequestProblem({
            source,
            line,
            message:
              earlier.id === id
                ? `duplicate request id "${id}" (first on line ${earlier.line})`
                : `duplicate request id "${id}" (line ${earlier.line} has "${earlier.id}": ids that differ only in case name the same file on case-insensitive file systems)`,
          }),
        )
        return
      }
      ids.set(id.toLowerCase(), { line, id })
    }
    requests.push(decoded.success)
  })
  if (problems.length > 0) return Result.fail(new InvalidRequests({ problems }))
  if (requests.length === 0)
    return Result.fail(
      new InvalidRequests({
        problems: [new RequestProblem({ source, message: "no requests (expected one JSON ImageRequest per line)" })],
      }),
    )
  return Result.succeed(requests)
}

const whole = (source: string, message: string) =>
  new InvalidRequests({ problems: [new RequestProblem({ source, message })] })

/**
 * Read and decode a JSON Lines file of requests (through Node's `FileSystem`). A missing file, a folder or
 * an unreadable file is one problem naming the path.
 *
 * @category decoding
 */
export const read = (
  path: string,
  options: ParseOptions = {},
): Effect.Effect<ReadonlyArray<ImageRequest>, InvalidRequests> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const info = yield* Effect.result(fs.stat(path))
    if (Result.isSuccess(info) && info.success.type === "Directory")
      return yield* whole(path, "is a folder, not a JSONL file")
    const text = yield* fs
      .readFileString(path)
      .pipe(
        Effect.mapError((error) =>
          whole(
            path,
            Files.errorCode(error) === "ENOENT" ? "file not found" : `cannot read it: ${Files.reasonOf(error)}`,
          ),
        ),
      )
    return yield* Result.match(parse(text, path, options), { onFailure: Effect.fail, onSuccess: Effect.succeed })
  }).pipe(Effect.provide(Files.layerNode), Effect.withSpan("Requests.read"))
