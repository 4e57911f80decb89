/**
 * The output folder: where images land, and what each one was made from. {@link open} proves the folder
 * usable before anything is paid for (created if missing, a probe file written and removed, stale
 * temporary files of a crashed run removed), then {@link OutputDirectory.write} saves each image atomically
 * and records the request identity it answers (`Identity.of(plan)`) in a sidecar, `<id>.<ext>.json`, so a
 * re-run can tell an image that is still current from one whose request changed
 * ({@link OutputDirectory.lookup}, read live from the folder: another process writing the same folder is
 * seen).
 *
 * Why a sidecar per image rather than one manifest: each record is written atomically on its own
 * (temporary file + rename), so concurrent writers — fibers, or two processes sharing a folder — never
 * contend for one file, a crash can damage at most one record, and moving or deleting an image moves or
 * orphans only its own record. An image without a record (made before records existed, or a crash between
 * the image and its record) counts as current: Peel never pays again for an image it cannot prove stale.
 * A placeholder (written with `{ placeholder: true }`) is recorded as one, and a re-run tries again for
 * the real image (`Changed` with `placeholder: true`).
 *
 * When an image cannot be written after it was paid for (disk full, folder removed), its bytes are kept
 * in a rescue folder — `$TMPDIR/peel-rescue/`, else `<dir>/.peel-rescue/` — as `<id>.<hash>.<ext>` (with
 * its record beside it) and `write` fails with {@link OutputRescued}, which says where.
 *
 * @since 0.1.0
 */
import { mkdir, readdir, rm, stat, unlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { OutputError } from "@peel/contract/Errors"
import type { ImageRequest } from "@peel/contract/Request"
import { Clock, Effect } from "effect"
import * as Files from "../internal/Files.ts"
import { hashOf, normalizePrompt } from "../internal/hash.ts"
import { version as identityVersion } from "../internal/identity.ts"
import type { Lookup } from "../state/OutputLookup.ts"
import * as OutputLookup from "../state/OutputLookup.ts"

export type { Changed, Current, Lookup, Missing } from "../state/OutputLookup.ts"

/** @category models */
export interface OutputDirectory {
  readonly dir: string
  /**
   * What exists for this id now (read from the folder on each call, so another process's writes are
   * seen): Missing; Current (made from the same request identity — `Identity.of(plan)` — or with no
   * record); Changed (a file exists for this id but was made from a different request, or is a
   * placeholder). A record written before the identity is compared with `legacy`, the old
   * {@link requestHash} of the request, when given.
   */
  readonly lookup: (id: string, identity: string, legacy?: string) => Lookup
  /**
   * Write the image atomically, then its record (`<file>.json`), and return the final path. When the
   * image cannot be written, its bytes go to a rescue folder and the failure is an {@link OutputRescued}
   * naming it: the bytes are never dropped.
   */
  readonly write: (
    id: string,
    requestHash: string,
    bytes: Uint8Array,
    mimeType: string,
    options?: WriteOptions,
  ) => Effect.Effect<string, OutputError>
}

/** @category models */
export interface WriteOptions {
  /** The image is a stand-in (no upstream could make it): recorded, so a re-run tries again. */
  readonly placeholder?: boolean | undefined
}

/**
 * An image that could not be written where it belonged and was kept at `rescuedTo` instead. Its `_tag`
 * stays `OutputError`, so everything that handles output errors handles this one.
 *
 * @category errors
 */
export class OutputRescued extends OutputError {
  /** Where the image's bytes were kept. */
  readonly rescuedTo: string
  constructor(properties: { readonly message: string; readonly path: string; readonly rescuedTo: string }) {
    super({ message: properties.message, path: properties.path })
    this.rescuedTo = properties.rescuedTo
  }
}

/** Where an output error kept the image, if it was rescued. @category errors */
export const rescuedTo = (error: unknown): string | undefined => {
  const value = (error as { rescuedTo?: unknown } | null)?.rescuedTo
  return typeof value === "string" ? value : undefined
}

/**
 * The hash output records held before the request identity: normalised prompt, model, size, aspect
 * ratio, use and priority as written. It misses the seed, reference images, provider options and more,
 * so it is no longer written: records hold `Identity.of(plan)`, and this hash only reads older records.
 *
 * @deprecated use `Identity.of(plan)` (`@peel/core` `Identity`); kept to read records written before it.
 * @category hashing
 */
export const requestHash = (request: ImageRequest): string =>
  hashOf([
    normalizePrompt(request.prompt),
    request.model ?? null,
    request.size ?? null,
    request.aspectRatio ?? null,
    request.use ?? null,
    request.priority ?? null,
  ])

const extensions: Readonly<Record<string, string>> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "image/gif": "gif",
}

/** The file extension for a MIME type (`bin` for one Peel does not know). @category files */
export const extensionOf = (mimeType: string): string => extensions[mimeType] ?? "bin"

const temporaryName = Files.temporaryName
/** A temporary file older than this is left over from a crashed run: a live write takes milliseconds. */
const staleAfterMs = 60_000
/** How long {@link open} may take before it fails (a hung network file system must not hang a run). */
const openTimeoutMs = 10_000

const recordSuffix = ".json"

const codeOf = Files.errorCode

/** A file-system failure in words a user can act on (`Files.reasonOf`; a missing path here is the folder). */
const reasonOf = (error: unknown): string =>
  codeOf(error) === "ENOENT" ? "the folder does not exist (was it removed?)" : Files.reasonOf(error)

/**
 * Write bytes atomically: a recognisable temporary file (`.<name>.<pid>-<n>.peel-tmp`) in the same
 * folder, then rename, so a reader never sees half an image. The temporary file is removed on failure.
 * The one atomic write of `internal/Files.ts`, through Node's `FileSystem`.
 *
 * @category files
 */
export const writeAtomically = (path: string, bytes: Uint8Array): Effect.Effect<void, OutputError> =>
  Files.writeAtomically(path, bytes).pipe(
    Effect.provide(Files.layerNode),
    Effect.mapError((error) => new OutputError({ path, message: `cannot write ${path}: ${reasonOf(error)}` })),
  )

/**
 * `mkdir -p`, one level at a time. Node's recursive mkdir never returns for some paths (`/proc/xyz`
 * spins forever), so this walks up itself: bounded by the depth of the path.
 */
const makeFolder = async (folder: string): Promise<void> => {
  try {
    await mkdir(folder)
    return
  } catch (error) {
    const code = codeOf(error)
    if (code === "EEXIST") {
      const found = await stat(folder)
      if (found.isDirectory()) return
      throw Object.assign(new Error("it is a file, not a folder"), { code: "EEXISTFILE" })
    }
    const parent = dirname(folder)
    if (code !== "ENOENT" || parent === folder) throw error
  }
  await makeFolder(dirname(folder))
  await mkdir(folder).catch(async (error: unknown) => {
    if (codeOf(error) === "EEXIST" && (await stat(folder)).isDirectory()) return
    throw error
  })
}

const openReasonOf = (error: unknown): string => {
  switch (codeOf(error)) {
    case "EEXISTFILE":
      return "it is a file, not a folder"
    case "ENOTDIR":
      return "part of the path is a file, not a folder"
    case "ENOENT":
      return "it cannot be created there"
    default:
      return reasonOf(error)
  }
}

const openError = (dir: string, reason: string): OutputError =>
  new OutputError({ path: dir, message: `cannot use ${dir} as the output folder: ${reason}` })

const atFileSystem =
  (dir: string) =>
  <A>(attempt: () => Promise<A>): Effect.Effect<A, OutputError> =>
    Effect.tryPromise({ try: attempt, catch: (error) => openError(dir, openReasonOf(error)) })

/** Remove temporary files a crashed run left behind (older than a minute); never fails the open. */
const removeStale = (dir: string, names: ReadonlyArray<string>, now: number): Promise<unknown> =>
  Promise.all(
    names
      .filter((name) => temporaryName.test(name))
      .map(async (name) => {
        const path = join(dir, name)
        const found = await stat(path)
        if (now - found.mtimeMs > staleAfterMs) await unlink(path)
      })
      .map((removal) => removal.catch(() => undefined)),
  )

/**
 * Open the output folder: create it if missing, prove it writable (write and remove a probe file), remove
 * stale temporary files left by a crashed run, and index existing images with a single `readdir`. Fails
 * with an {@link OutputError} naming the path and the reason — a file, read-only, not creatable — within
 * ten seconds at most.
 *
 * @category constructors
 */
export const open = (dir: string): Effect.Effect<OutputDirectory, OutputError> => {
  const attempt = atFileSystem(dir)
  return Effect.gen(function* () {
    yield* attempt(() => makeFolder(dir))
    const probe = join(dir, `.peel-probe.${process.pid}.peel-tmp`)
    yield* Effect.tryPromise({
      try: async () => {
        await writeFile(probe, "peel")
        await unlink(probe)
      },
      catch: (error) => openError(dir, codeOf(error) === "ENOENT" ? "files cannot be created in it" : reasonOf(error)),
    })
    const names = yield* attempt(() => readdir(dir))
    const now = yield* Clock.currentTimeMillis
    yield* Effect.promise(() => removeStale(dir, names, now))
    return makeDirectory(dir)
  }).pipe(
    Effect.timeoutOrElse({
      duration: openTimeoutMs,
      orElse: () => Effect.fail(openError(dir, `no answer within ${openTimeoutMs / 1000}s (a hung file system?)`)),
    }),
  )
}

/** What an image's record says: the request it answers, and whether it is only a placeholder. */
interface Recorded {
  readonly hash: string
  readonly placeholder: boolean
}

/**
 * What exists for `id` in `dir` right now (see {@link OutputLookup.lookupFolder}): read from the files on
 * every call, so another process's writes are seen.
 *
 * @category lookup
 */
export const lookupIn = OutputLookup.lookupFolder

const makeDirectory = (dir: string): OutputDirectory => {
  const lookup = (id: string, identity: string, legacy?: string): Lookup => lookupIn(dir, id, identity, legacy)

  const recordOf = (id: string, record: Recorded, bytes: Uint8Array, mimeType: string): Uint8Array =>
    new TextEncoder().encode(
      `${JSON.stringify({
        id,
        requestHash: record.hash,
        identity: identityVersion,
        mimeType,
        bytes: bytes.length,
        ...(record.placeholder ? { placeholder: true } : {}),
      })}\n`,
    )

  const rescue = (
    id: string,
    record: Recorded,
    bytes: Uint8Array,
    mimeType: string,
    failure: OutputError,
  ): Effect.Effect<never, OutputError> =>
    Effect.gen(function* () {
      const name = `${id}.${record.hash.slice(0, 12)}.${extensionOf(mimeType)}`
      const folders = [join(tmpdir(), "peel-rescue"), join(dir, ".peel-rescue")]
      for (const folder of folders) {
        const path = join(folder, name)
        const saved = yield* Effect.result(
          Effect.tryPromise({
            try: () => makeFolder(folder),
            catch: (error) => new OutputError({ path: folder, message: reasonOf(error) }),
          }).pipe(Effect.andThen(writeAtomically(path, bytes))),
        )
        if (saved._tag === "Failure") continue
        yield* Effect.ignore(writeAtomically(`${path}${recordSuffix}`, recordOf(id, record, bytes, mimeType)))
        return yield* new OutputRescued({
          path: failure.path,
          rescuedTo: path,
          message: `${failure.message}; the image was kept at ${path}`,
        })
      }
      return yield* new OutputError({
        path: failure.path,
        message: `${failure.message}; it could not be kept in ${folders.join(" or ")} either`,
      })
    })

  const write: OutputDirectory["write"] = (id, hash, bytes, mimeType, options = {}) => {
    const name = `${id}.${extensionOf(mimeType)}`
    const file = join(dir, name)
    const record = `${file}${recordSuffix}`
    const entry: Recorded = { hash, placeholder: options.placeholder === true }
    return writeAtomically(file, bytes).pipe(
      Effect.catch((failure) => rescue(id, entry, bytes, mimeType, failure)),
      Effect.andThen(
        writeAtomically(record, recordOf(id, entry, bytes, mimeType)).pipe(
          // The image is safe; without its record it counts as current. A record from an older request
          // must not outlive it, or the next run would think the new image stale.
          Effect.catch((failure) =>
            Effect.promise(() => rm(record, { force: true }).catch(() => undefined)).pipe(
              Effect.andThen(Effect.logWarning(`${failure.message} (the image itself was saved)`)),
            ),
          ),
        ),
      ),
      Effect.as(file),
    )
  }

  return { dir, lookup, write }
}
