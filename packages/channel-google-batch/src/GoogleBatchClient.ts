/**
 * The transport for Google's Batch API and the Files API it uses: a `@google/genai` client with SDK
 * retries off (no `retryOptions`), the key only in the `x-goog-api-key` header, and every call abortable
 * (the Effect's interruption signal becomes the SDK's `abortSignal`). One method per upstream call —
 * create, get, list (paged), cancel, upload, download — each failure classified once by
 * `internal/errors.ts`. Nothing about images lives here.
 *
 * @since 0.1.0
 */
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { GoogleGenAI } from "@google/genai"
import type { Errors } from "@peel/contract"
import { Effect, Redacted } from "effect"
import { classify } from "./internal/errors.ts"

/** @category models */
export interface ClientOptions {
  readonly channel: string
  readonly apiKey: Redacted.Redacted<string>
  readonly baseUrl: string
  readonly apiVersion?: string
  readonly timeoutMillis?: number
  /** A `fetch` to send requests through (tests rewrite answers with it). */
  readonly fetch?: typeof fetch
}

/** A job as the SDK returns it (`BatchJob`): only the fields Peel reads. @category models */
export interface RawJob {
  readonly name?: string | undefined
  readonly displayName?: string | undefined
  /** `JOB_STATE_*` from the SDK; `BATCH_STATE_*` when an upstream's spelling passes through unchanged. */
  readonly state?: string | undefined
  readonly model?: string | undefined
  readonly createTime?: string | undefined
  readonly endTime?: string | undefined
  readonly error?: { readonly code?: unknown; readonly message?: unknown } | undefined
  readonly dest?:
    | {
        readonly fileName?: string | undefined
        readonly inlinedResponses?:
          | ReadonlyArray<{
              readonly response?: unknown
              readonly error?: unknown
              readonly metadata?: Readonly<Record<string, string>> | undefined
            }>
          | undefined
      }
    | undefined
}

/** One inline request as the SDK takes it. @category models */
export interface InlineRequest {
  /** `Content[]`: the prompt text part, then any reference images as `inlineData` parts. */
  readonly contents: unknown
  readonly config: unknown
  readonly metadata: Readonly<Record<string, string>>
}

/** @category models */
export interface Client {
  /** Create a job from inline requests or an uploaded JSONL file (`files/...`). Not idempotent upstream. */
  readonly create: (
    model: string,
    source: ReadonlyArray<InlineRequest> | string,
    displayName: string,
  ) => Effect.Effect<RawJob, Errors.ChannelError>
  readonly get: (name: string) => Effect.Effect<RawJob, Errors.ChannelError>
  /** Every job, newest first, following `nextPageToken` (at most `maxPages` pages of `pageSize`). */
  readonly list: (options?: {
    readonly pageSize?: number
    readonly maxPages?: number
  }) => Effect.Effect<ReadonlyArray<RawJob>, Errors.ChannelError>
  readonly cancel: (name: string) => Effect.Effect<void, Errors.ChannelError>
  /** Upload bytes with the resumable Files API; returns the file's name (`files/...`). */
  readonly upload: (bytes: Uint8Array, displayName: string) => Effect.Effect<string, Errors.ChannelError>
  /** Download a file's content (a batch's result file) as text. */
  readonly download: (fileName: string) => Effect.Effect<string, Errors.ChannelError>
}

/** Build the client. @category constructors */
export const make = (options: ClientOptions): Client => {
  const key = Redacted.value(options.apiKey)
  const sdk = new GoogleGenAI({
    apiKey: key,
    httpOptions: {
      baseUrl: options.baseUrl,
      ...(options.apiVersion === undefined ? {} : { apiVersion: options.apiVersion }),
      ...(options.timeoutMillis === undefined ? {} : { timeout: options.timeoutMillis }),
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    },
  })
  const call = <A>(run: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, Errors.ChannelError> =>
    Effect.tryPromise({ try: run, catch: (thrown) => classify(options.channel, thrown, key) })

  return {
    create: (model, source, displayName) =>
      call(
        (signal) =>
          sdk.batches.create({
            model,
            src: typeof source === "string" ? source : (source as never),
            config: { displayName, abortSignal: signal },
          }) as Promise<RawJob>,
      ),
    get: (name) => call((signal) => sdk.batches.get({ name, config: { abortSignal: signal } }) as Promise<RawJob>),
    list: (listOptions = {}) =>
      call(async (signal) => {
        const pager = await sdk.batches.list({ config: { pageSize: listOptions.pageSize ?? 100, abortSignal: signal } })
        const jobs: Array<RawJob> = [...(pager.page as ReadonlyArray<RawJob>)]
        let pages = 1
        while (pager.hasNextPage() && pages < (listOptions.maxPages ?? 50)) {
          jobs.push(...((await pager.nextPage()) as ReadonlyArray<RawJob>))
          pages += 1
        }
        return jobs
      }),
    cancel: (name) =>
      call((signal) => sdk.batches.cancel({ name, config: { abortSignal: signal } })).pipe(Effect.asVoid),
    upload: (bytes, displayName) =>
      call(async (signal) => {
        const file = await sdk.files.upload({
          file: new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "jsonl" }),
          config: { mimeType: "jsonl", displayName, abortSignal: signal },
        })
        if (typeof file.name !== "string") throw new SyntaxError("the upload answer names no file (JSON)")
        return file.name
      }),
    download: (fileName) =>
      call(async (signal) => {
        const folder = await mkdtemp(join(tmpdir(), "peel-batch-"))
        try {
          const path = join(folder, "results.jsonl")
          await sdk.files.download({ file: fileName, downloadPath: path, config: { abortSignal: signal } })
          return await readFile(path, "utf8")
        } finally {
          await rm(folder, { recursive: true, force: true })
        }
      }),
  }
}
