/**
 * Output lookup: what an output folder already holds for a request — the resume check. Read live (another
 * process writing the same folder is seen), by the request identity (`Identity.of(plan)`).
 *
 * {@link layerFolder} (in `State.layerMemory`) reads the folder itself: `<id>.<ext>` and the record beside
 * it. A store that keeps outputs elsewhere (object storage behind a gateway, a shared index) implements
 * {@link OutputLookupShape} over its own records — {@link fromKeyValueStore} is one, over any
 * `effect/persistence` `KeyValueStore` — and is told of each image with {@link OutputLookupShape.record};
 * the folder implementation needs no telling (the output folder's sidecar records are its index). Every
 * implementation applies the same rule, {@link decide}.
 *
 * @since 0.4.0
 */
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Context, Effect, Layer, Schema } from "effect"
import type { KeyValueStore } from "effect/persistence"
import { version as identityVersion } from "../internal/identity.ts"

/** No image exists for the id. @category model */
export interface Missing {
  readonly _tag: "Missing"
}
/** An image exists and was made from the same request (or carries no record saying otherwise). @category model */
export interface Current {
  readonly _tag: "Current"
  readonly file: string
}
/**
 * An image exists for the id but was made from a different request — or it is only a placeholder
 * (`placeholder: true`), which a re-run tries to replace with the real image. @category model
 */
export interface Changed {
  readonly _tag: "Changed"
  readonly file: string
  readonly placeholder?: true
}
/** What already exists for one id. @category model */
export type Lookup = Missing | Current | Changed

const recordSuffix = ".json"

/** What an image's record says: the request it answers, and whether it is only a placeholder. @category model */
export interface Recorded {
  readonly hash: string
  readonly placeholder: boolean
  /** Written before the request identity: `hash` is the old request hash. */
  readonly legacy?: boolean | undefined
}

/** Image types an id may have been written as, in the order a lookup reports them. */
const imageExtensions = ["png", "jpg", "webp", "gif", "bin"] as const

/** What the record beside an image says; undefined when it has none or it cannot be read. */
const readRecord = (file: string): Recorded | undefined => {
  let text: string
  try {
    text = readFileSync(`${file}${recordSuffix}`, "utf8")
  } catch {
    return undefined
  }
  try {
    const value = JSON.parse(text) as { requestHash?: unknown; placeholder?: unknown; identity?: unknown }
    if (typeof value.requestHash !== "string") return undefined
    return {
      hash: value.requestHash,
      placeholder: value.placeholder === true,
      ...(value.identity === identityVersion ? {} : { legacy: true }),
    }
  } catch {
    return undefined
  }
}

/**
 * The rule every implementation applies: given the images found for an id (file, and its record when it
 * has a readable one), what exists. Current: a record holding `identity` (or, written before the identity,
 * `legacy` — the old request hash — when given) that is not a placeholder, else an image without a record
 * (Peel never pays again for an image it cannot prove stale). Changed: a placeholder of this request, or
 * an image of another request.
 *
 * @category rules
 */
export const decide = (
  entries: ReadonlyArray<readonly [string, Recorded | undefined]>,
  identity: string,
  legacy?: string,
): Lookup => {
  if (entries.length === 0) return { _tag: "Missing" }
  const matches = (record: Recorded) => record.hash === (record.legacy === true ? (legacy ?? identity) : identity)
  const current =
    entries.find(([, record]) => record !== undefined && matches(record) && !record.placeholder) ??
    entries.find(([, record]) => record === undefined)
  if (current !== undefined) return { _tag: "Current", file: current[0] }
  const placeholder = entries.find(([, record]) => record !== undefined && matches(record))
  if (placeholder !== undefined) return { _tag: "Changed", file: placeholder[0], placeholder: true }
  return { _tag: "Changed", file: entries[0]![0] }
}

/**
 * What exists for `id` in the folder `dir` right now: `<id>.<ext>` images and their `.json` records, read
 * from the files on every call, so images and records another process wrote into the same folder are seen.
 *
 * @category folder
 */
export const lookupFolder = (dir: string, id: string, identity: string, legacy?: string): Lookup => {
  const entries: Array<readonly [string, Recorded | undefined]> = []
  for (const extension of imageExtensions) {
    const file = join(dir, `${id}.${extension}`)
    if (existsSync(file)) entries.push([file, readRecord(file)])
  }
  return decide(entries, identity, legacy)
}

/** @category model */
export interface OutputLookupShape {
  /** What `dir` holds for `id` now, by `identity` (and `legacy`, the old request hash, for older records). */
  readonly lookup: (dir: string, id: string, identity: string, legacy?: string) => Effect.Effect<Lookup>
  /** An image was written for `id` at `file`: remember what it answers (a no-op where the files are the index). */
  readonly record: (dir: string, id: string, file: string, recorded: Recorded) => Effect.Effect<void>
}

/** @category services */
export class OutputLookup extends Context.Service<OutputLookup, OutputLookupShape>()("@peel/core/state/OutputLookup") {}

/** The folder read on every lookup; its sidecar records are the index, so `record` has nothing to do. @category constructors */
export const folder: OutputLookupShape = {
  lookup: (dir, id, identity, legacy) => Effect.sync(() => lookupFolder(dir, id, identity, legacy)),
  record: () => Effect.void,
}

const Entries = Schema.fromJsonString(
  Schema.Array(
    Schema.Struct({
      file: Schema.String,
      hash: Schema.String,
      placeholder: Schema.Boolean,
      legacy: Schema.optional(Schema.Boolean),
    }),
  ),
)
const decodeEntries = Schema.decodeUnknownOption(Entries)
const encodeEntries = Schema.encodeSync(Entries)

/**
 * Output records in a `KeyValueStore` (one key per folder and id, holding each image's record), for
 * outputs that are not in a local folder. Unreadable values are missing records.
 *
 * @category constructors
 */
export const fromKeyValueStore = (store: KeyValueStore.KeyValueStore): OutputLookupShape => {
  const keyOf = (dir: string, id: string) => `peel-output/${dir}/${id}`
  const entriesOf = (dir: string, id: string) =>
    store.get(keyOf(dir, id)).pipe(
      Effect.map((text) =>
        text === undefined ? [] : decodeEntries(text).pipe((found) => (found._tag === "Some" ? found.value : [])),
      ),
      Effect.catch(() => Effect.succeed([])),
    )
  return {
    lookup: (dir, id, identity, legacy) =>
      Effect.map(entriesOf(dir, id), (entries) =>
        decide(
          entries.map((entry) => [entry.file, entry] as const),
          identity,
          legacy,
        ),
      ),
    record: (dir, id, file, recorded) =>
      Effect.flatMap(entriesOf(dir, id), (entries) =>
        Effect.ignore(
          store.set(
            keyOf(dir, id),
            encodeEntries([
              {
                file,
                hash: recorded.hash,
                placeholder: recorded.placeholder,
                ...(recorded.legacy === true ? { legacy: true } : {}),
              },
              ...entries.filter((entry) => entry.file !== file),
            ]),
          ),
        ),
      ),
  }
}

/** The output folder read live. @category layers */
export const layerFolder: Layer.Layer<OutputLookup> = Layer.succeed(OutputLookup, folder)
