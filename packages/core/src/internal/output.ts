// Interim output folder used by the runner until the Output module lands (same API).
import { existsSync } from "node:fs"
import { mkdir, rename, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect } from "effect"
import { OutputError } from "../Errors.ts"
import type { ImageRequest } from "../Request.ts"
import { hashOf, normalizePrompt } from "./hash.ts"

export type Lookup =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Current"; readonly file: string }
  | { readonly _tag: "Changed"; readonly file: string }

export interface OutputDirectory {
  readonly dir: string
  readonly lookup: (id: string, requestHash: string) => Lookup
  readonly write: (
    id: string,
    requestHash: string,
    bytes: Uint8Array,
    mimeType: string,
  ) => Effect.Effect<string, OutputError>
}

const extensions: Record<string, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
  "image/gif": "gif",
}

export const requestHash = (request: ImageRequest): string =>
  hashOf([
    normalizePrompt(request.prompt),
    request.model ?? null,
    request.size ?? null,
    request.aspectRatio ?? null,
    request.use ?? null,
    request.priority ?? null,
  ])

export const writeAtomically = (path: string, bytes: Uint8Array): Effect.Effect<void, OutputError> =>
  Effect.tryPromise({
    try: async () => {
      const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
      await writeFile(temporary, bytes)
      await rename(temporary, path)
    },
    catch: (error) => new OutputError({ path, message: `cannot write ${path}: ${String(error)}` }),
  })

export const open = (dir: string): Effect.Effect<OutputDirectory, OutputError> =>
  Effect.map(
    Effect.tryPromise({
      try: () => mkdir(dir, { recursive: true }),
      catch: (error) => new OutputError({ path: dir, message: `cannot create ${dir}: ${String(error)}` }),
    }),
    () => ({
      dir,
      lookup: (id) => {
        const file = Object.values(extensions)
          .map((extension) => join(dir, `${id}.${extension}`))
          .find((path) => existsSync(path))
        return file === undefined ? { _tag: "Missing" } : { _tag: "Current", file }
      },
      write: (id, _hash, bytes, mimeType) => {
        const file = join(dir, `${id}.${extensions[mimeType] ?? "bin"}`)
        return Effect.as(writeAtomically(file, bytes), file)
      },
    }),
  )
