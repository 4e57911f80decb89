/**
 * Files through Effect's `FileSystem` service: the one atomic write in Peel (images, their records, cache
 * entries, reports), a byte reader, and file-system failures in words a user can act on. Public entry
 * points that take no services provide {@link layerNode} (Node's `FileSystem` from `@effect/platform-node`);
 * tests provide another `FileSystem` to make a write fail half-way.
 *
 * @since 0.4.0
 */
import { basename, dirname, join } from "node:path"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, FileSystem, type Layer, type PlatformError } from "effect"

/** Node's `FileSystem`. @category layers */
export const layerNode: Layer.Layer<FileSystem.FileSystem> = NodeFileSystem.layer

/** The suffix of every temporary file Peel writes: a crashed run's leftovers are recognisable. @category names */
export const temporarySuffix = ".peel-tmp"

/** `.<name>.<pid>-<n>.peel-tmp`: a temporary file's name. @category names */
export const temporaryName = /^\..*\.peel-tmp$/

let temporaryCounter = 0

/** Where a write to `path` goes first: a hidden file beside it, unique in this process. @category names */
export const temporaryPath = (path: string): string =>
  join(dirname(path), `.${basename(path)}.${process.pid}-${++temporaryCounter}${temporarySuffix}`)

/**
 * Write `data` atomically: to a temporary file in the same folder, then renamed over `path`, so a reader
 * (in this process or another) sees the old file or the new one, never half of one; an existing file is
 * replaced by a new inode, not truncated in place. The temporary file is removed when anything fails.
 *
 * @category writing
 */
export const writeAtomically = (
  path: string,
  data: Uint8Array | string,
): Effect.Effect<void, PlatformError.PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fileSystem = yield* FileSystem.FileSystem
    const temporary = temporaryPath(path)
    yield* (
      typeof data === "string" ? fileSystem.writeFileString(temporary, data) : fileSystem.writeFile(temporary, data)
    ).pipe(
      Effect.andThen(fileSystem.rename(temporary, path)),
      Effect.onError(() => Effect.ignore(fileSystem.remove(temporary, { force: true }))),
    )
  })

/** Read a whole file. @category reading */
export const readBytes = (
  path: string,
): Effect.Effect<Uint8Array, PlatformError.PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fileSystem = yield* FileSystem.FileSystem
    return yield* fileSystem.readFile(path)
  })

/**
 * Read a text file the user named (`kind`: "pipeline", "workload"), or say what is wrong in a few
 * words: `file not found`, `is a directory, not a pipeline file`, `cannot read it: permission denied`.
 *
 * @category reading
 */
export const readText = (path: string, kind: string): Effect.Effect<string, string, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fileSystem = yield* FileSystem.FileSystem
    const unreadable = (error: PlatformError.PlatformError) =>
      errorCode(error) === "ENOENT" ? "file not found" : `cannot read it: ${reasonOf(error)}`
    const info = yield* fileSystem.stat(path).pipe(Effect.mapError(unreadable))
    if (info.type === "Directory") return yield* Effect.fail(`is a directory, not a ${kind} file`)
    return yield* fileSystem.readFileString(path).pipe(Effect.mapError(unreadable))
  })

/**
 * The errno code behind a failure (`ENOSPC`, `EACCES`…): on the error itself (Node), or on the cause
 * of a `PlatformError`.
 *
 * @category errors
 */
export const errorCode = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    const reason = (current as { reason?: unknown }).reason
    current = typeof reason === "object" && reason !== null ? reason : (current as { cause?: unknown }).cause
  }
  return undefined
}

/** A file-system failure in words a user can act on. @category errors */
export const reasonOf = (error: unknown): string => {
  switch (errorCode(error)) {
    case "ENOSPC":
      return "the disk is full"
    case "EDQUOT":
      return "the disk quota is exhausted"
    case "EACCES":
    case "EPERM":
      return "permission denied"
    case "EROFS":
      return "the file system is read-only"
    case "ENOENT":
      return "no such file or folder"
    case "ENOTDIR":
      return "part of the path is a file, not a folder"
    case "EISDIR":
      return "a folder is in the way"
    default: {
      const reason = (error as { reason?: { description?: unknown } } | null)?.reason?.description
      return typeof reason === "string" ? reason : error instanceof Error ? error.message : String(error)
    }
  }
}
