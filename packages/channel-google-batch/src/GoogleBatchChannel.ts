/**
 * The Google Batch API channel: its YAML block ({@link Config}) and {@link make}. It takes only
 * `urgency: batch` work (`capabilities.batch`, so core prices it at Google's batch tier, half the
 * standard price) through the core {@link Channel.BatchFacet}: `submit` sends a job — inline requests
 * when the job is small, otherwise a JSONL file uploaded through the Files API (whose results come back
 * as a file too) — `poll` reads its state (both spellings: `BATCH_STATE_*` on the wire, `JOB_STATE_*`
 * from the SDK), `collect` turns every result line into an image or a typed error through the shared
 * Gemini wire module, `cancel` cancels, and `find` looks a job up by its display name (crash recovery).
 * Its real-time `generate` refuses with `Unsupported` without calling anybody.
 *
 * @since 0.1.0
 */
import { Catalog, type Channel, Errors, Image, Pricing, Units } from "@peel/contract"
import { GeminiWire } from "@peel/gemini-wire"
import { Effect, Redacted, Schema } from "effect"
import * as GoogleBatchClient from "./GoogleBatchClient.ts"
import { fromRequestError } from "./internal/errors.ts"

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/**
 * The channel's YAML block (everything but `plugin`).
 *
 * @category config
 */
export const Config = Schema.Struct({
  apiKey: Schema.RedactedFromValue(Schema.String).annotate({
    description: "API key (use ${GEMINI_API_KEY}); sent only in the x-goog-api-key header",
  }),
  baseUrl: Schema.optional(Schema.String).annotate({
    description: "Endpoint root; default https://generativelanguage.googleapis.com",
  }),
  apiVersion: Schema.optional(Schema.Literals(["v1", "v1beta"])).annotate({
    description: "API version; the SDK's default (v1) when unset",
  }),
  models: Schema.optional(Schema.Array(Schema.String)).annotate({
    description: "Model ids this channel serves; every catalog model by default",
  }),
  price: Schema.optional(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))).annotate({
    description: "Flat USD per image; Google's batch price (50% of the token price) from the catalog when unset",
  }),
  timeout: Schema.optional(Units.DurationMillis).annotate({
    description: "Timeout of one Batch or Files API call (not of the job), e.g. 120s",
  }),
  inlineMaxRequests: Schema.optional(Count).annotate({
    description:
      "Jobs of at most this many requests (and inlineMaxBytes) are sent inline; larger ones as a JSONL file (default 20)",
  }),
  inlineMaxBytes: Schema.optional(Count).annotate({
    description: "Largest inline job in bytes (default 4 MB; Google's limit is 20 MB)",
  }),
  maxJobRequests: Schema.optional(Count).annotate({
    description:
      "Most requests in one job; more are split into several jobs (default 100: a job's results are held in memory while they are collected)",
  }),
  maxJobBytes: Schema.optional(Count).annotate({
    description: "Largest job input in bytes; more is split into several jobs (default 100 MB; Google's limit is 2 GB)",
  }),
})

/** @category config */
export type Config = typeof Config.Type

export const defaultBaseUrl = "https://generativelanguage.googleapis.com"

/** Defaults for the job size bounds. @category config */
export const defaults = {
  inlineMaxRequests: 20,
  inlineMaxBytes: 4 * 1024 * 1024,
  maxJobRequests: 100,
  maxJobBytes: 100 * 1024 * 1024,
} as const

/**
 * A job state in either spelling (`BATCH_STATE_SUCCEEDED`, `JOB_STATE_SUCCEEDED`, or bare) as core's
 * state; `undefined` for one Peel does not know (treated as still running by callers).
 *
 * @category wire
 */
export const stateOf = (state: string | undefined): Channel.BatchJob["state"] | undefined => {
  const bare = (state ?? "").replace(/^(BATCH_STATE_|JOB_STATE_)/, "")
  switch (bare) {
    case "PENDING":
    case "QUEUED":
    case "UNSPECIFIED":
      return "pending"
    case "RUNNING":
    case "UPDATING":
    case "PAUSED":
    case "CANCELLING":
      return "running"
    case "SUCCEEDED":
    case "PARTIALLY_SUCCEEDED":
      return "succeeded"
    case "FAILED":
      return "failed"
    case "CANCELLED":
      return "cancelled"
    case "EXPIRED":
      return "expired"
    default:
      return undefined
  }
}

/** The request a JSONL file line carries (`generation_config`, as the file format has it). @category wire */
export const fileLine = (request: Channel.ChannelRequest): string => {
  const parameters = GeminiWire.buildRequest(request)
  return JSON.stringify({
    key: request.id,
    request: {
      contents: parameters.contents,
      generation_config: parameters.config,
    },
  })
}

/** The SDK's inline request for one ChannelRequest; `metadata.key` carries the request id. @category wire */
export const inlineRequest = (request: Channel.ChannelRequest): GoogleBatchClient.InlineRequest => {
  const parameters = GeminiWire.buildRequest(request)
  return { contents: parameters.contents, config: parameters.config, metadata: { key: request.id } }
}

const jobOf = (raw: GoogleBatchClient.RawJob): Channel.BatchJob => {
  const error = typeof raw.error?.message === "string" && raw.error.message !== "" ? raw.error.message : undefined
  return {
    name: raw.name ?? "",
    ...(raw.displayName === undefined ? {} : { displayName: raw.displayName }),
    state: stateOf(raw.state) ?? "running",
    ...(error === undefined ? {} : { error }),
  }
}

/** Build the channel. @category constructors */
export const make = (
  config: Config,
  context: Channel.MakeContext,
  clientOptions: Partial<GoogleBatchClient.ClientOptions> = {},
): Effect.Effect<Channel.Channel> =>
  Effect.sync(() => {
    const name = context.name
    const secret = Redacted.value(config.apiKey)
    const weakKey = Errors.placeholderSecretWarning("apiKey", secret)
    if (weakKey !== undefined) context.warn(weakKey)
    const client = GoogleBatchClient.make({
      channel: name,
      apiKey: config.apiKey,
      baseUrl: (config.baseUrl ?? defaultBaseUrl).replace(/\/+$/, ""),
      ...(config.apiVersion === undefined ? {} : { apiVersion: config.apiVersion }),
      ...(config.timeout === undefined ? {} : { timeoutMillis: config.timeout }),
      ...clientOptions,
    })
    const models = config.models ?? Object.keys(Catalog.models)
    for (const model of models)
      if (Catalog.findModel(model) === undefined)
        context.warn(`model ${model} is not in Peel's catalog: its price and pixel size are unknown`)
    // Reference images travel inline (`inlineData` parts); `sizeOf` counts them against the job's limits.
    const capabilities: Channel.Capabilities = { models, batch: true, referenceImages: Image.imageLimits.maxImages }
    const price = (request: Channel.ChannelRequest): number =>
      config.price ?? Pricing.expectedRequestCost(request, "batch")
    const inlineMaxRequests = config.inlineMaxRequests ?? defaults.inlineMaxRequests
    const inlineMaxBytes = config.inlineMaxBytes ?? defaults.inlineMaxBytes
    const limits = {
      maxRequests: config.maxJobRequests ?? defaults.maxJobRequests,
      maxBytes: config.maxJobBytes ?? defaults.maxJobBytes,
    }
    const sizeOf = (request: Channel.ChannelRequest): number => Buffer.byteLength(fileLine(request)) + 1

    const generate = (request: Channel.ChannelRequest) =>
      Effect.fail(
        new Errors.Unsupported({
          channel: name,
          message: `the Batch API takes only urgency: batch work (peel batch submit, or a bulk run); ${request.id} was sent in real time`,
        }),
      )

    const submit: Channel.BatchFacet["submit"] = (requests, options) =>
      Effect.gen(function* () {
        const first = requests[0]
        if (first === undefined)
          return yield* new Errors.Rejected({ channel: name, message: "a batch job needs at least one request" })
        const model = first.model
        const mixed = requests.find((request) => request.model !== first.model)
        if (mixed !== undefined)
          return yield* new Errors.Rejected({
            channel: name,
            message: `one job serves one model: ${first.id} asks for ${first.model}, ${mixed.id} for ${mixed.model}`,
          })
        const lines = requests.map(fileLine)
        const bytes = lines.reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0)
        if (requests.length > limits.maxRequests || bytes > limits.maxBytes)
          return yield* new Errors.Rejected({
            channel: name,
            message: `a job of ${requests.length} requests and ${bytes} bytes is over this channel's bounds (${limits.maxRequests} requests, ${limits.maxBytes} bytes)`,
          })
        if (requests.length <= inlineMaxRequests && bytes <= inlineMaxBytes)
          return jobOf(yield* client.create(model, requests.map(inlineRequest), options.displayName))
        const file = yield* client.upload(
          new TextEncoder().encode(`${lines.join("\n")}\n`),
          `${options.displayName}-input`,
        )
        return jobOf(yield* client.create(model, file, options.displayName))
      })

    const poll: Channel.BatchFacet["poll"] = (job) => Effect.map(client.get(job), jobOf)

    const find: NonNullable<Channel.BatchFacet["find"]> = (displayName) =>
      Effect.map(client.list(), (jobs) => {
        const found = jobs.find((job) => job.displayName === displayName)
        return found === undefined ? undefined : jobOf(found)
      })

    const resultOf = (
      id: string,
      entry: { readonly response?: unknown; readonly error?: unknown },
    ): Effect.Effect<{ readonly id: string; readonly result: Channel.ChannelImage | Errors.ChannelError }> => {
      if (entry.error !== undefined && entry.error !== null)
        return Effect.succeed({ id, result: fromRequestError(name, entry.error, secret) })
      return GeminiWire.toChannelImage(name, { id } as Channel.ChannelRequest, entry.response ?? {}, config.price).pipe(
        Effect.result,
        Effect.map((result) => ({ id, result: result._tag === "Success" ? result.success : result.failure })),
      )
    }

    const collect: Channel.BatchFacet["collect"] = (job) =>
      Effect.gen(function* () {
        const raw = yield* client.get(job)
        const state = stateOf(raw.state)
        if (state !== "succeeded")
          return yield* new Errors.Rejected({
            channel: name,
            message: `${job} is ${state ?? Errors.redact(String(raw.state), [secret], 60)}: it has no results to collect`,
          })
        if (raw.dest?.fileName !== undefined && raw.dest.fileName !== "") {
          const text = yield* client.download(raw.dest.fileName)
          const entries: Array<{ id: string; response?: unknown; error?: unknown }> = []
          for (const line of text.split("\n")) {
            if (line.trim() === "") continue
            let parsed: { key?: unknown; response?: unknown; error?: unknown }
            try {
              parsed = JSON.parse(line) as typeof parsed
            } catch {
              return yield* new Errors.MalformedResponse({
                channel: name,
                message: `a line of ${job}'s result file is not JSON`,
              })
            }
            if (typeof parsed.key !== "string") continue
            entries.push({ id: parsed.key, response: parsed.response, error: parsed.error })
          }
          return yield* Effect.forEach(entries, (entry) => resultOf(entry.id, entry))
        }
        const inlined = raw.dest?.inlinedResponses ?? []
        return yield* Effect.forEach(
          inlined.filter((entry) => typeof entry.metadata?.key === "string"),
          (entry) => resultOf(entry.metadata!.key!, entry),
        )
      })

    const cancel: NonNullable<Channel.BatchFacet["cancel"]> = (job) => client.cancel(job)

    const batch: Channel.BatchFacet = { submit, poll, collect, cancel, find, limits, sizeOf }
    return { name, plugin: "google-batch", capabilities, price, generate, batch }
  })
