/**
 * Stages: middleware around the innermost `generate`. A pipeline lists them in order and each wraps
 * everything after it: `(next) => (request) => Effect<ImageResult, PipelineError>`. Each stage has a
 * Schema for its YAML block (the single spec that drives validation, the JSON Schema and docs) and a
 * `make` that turns the decoded block into middleware.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Effect, Exit, Schema } from "effect"
import { type AspectRatios, findModel, resolveModel, Sizes } from "./Catalog.ts"
import { type Channel, type ChannelImage, type ChannelRequest, refusal } from "./Channel.ts"
import { DurationMillis } from "./Duration.ts"
import { type ChannelError, isChannelError, NoChannel, type PipelineError, Timeout } from "./Errors.ts"
import { inspectImage } from "./Image.ts"
import { canonicalHash } from "./internal/hash.ts"
import type { Attempt, ImageRequest, ImageResult } from "./Request.ts"

/** A request on its way through the stages: routing decisions accumulate here. @category model */
export interface PlannedRequest {
  readonly id: string
  readonly request: ImageRequest
  readonly model?: string
  readonly size?: (typeof Sizes)[number]
  readonly aspectRatio?: (typeof AspectRatios)[number]
  /** Channel names in the order to try; every channel when unset. */
  readonly candidates?: ReadonlyArray<string>
  /** Every try so far, appended by `generate` (read by the runner for reports). */
  readonly attempts: Array<Attempt>
}

/** @category model */
export type Handler = (planned: PlannedRequest) => Effect.Effect<ImageResult, PipelineError>
/** @category model */
export type Middleware = (next: Handler) => Handler

/** What a stage's `make` can use: the pipeline's channels, by name, in declaration order. @category model */
export interface StageContext {
  readonly channels: ReadonlyMap<string, Channel>
}

/** A stage definition: its YAML key, Schema and middleware factory. @category model */
export interface StageDefinition<Config> {
  readonly key: string
  readonly description: string
  readonly schema: Schema.Codec<Config, any>
  /** Cross-checks against the rest of the pipeline; each finding as `[path inside the block, message, severity]`. */
  readonly check?: (
    config: Config,
    pipeline: { readonly channelNames: ReadonlyArray<string> },
  ) => ReadonlyArray<Finding>
  readonly make: (config: Config, context: StageContext) => Middleware
  /** Only the innermost stage may be terminal. */
  readonly terminal?: boolean
}

/** A cross-check finding. @category model */
export interface Finding {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
  readonly severity: "error" | "warning"
}

const Size = Schema.Literals(Sizes)

// ---------------------------------------------------------------------------------------------------
// resolution

const ResolutionConfig = Schema.Record(Schema.String, Size).annotate({
  description: "Map `use` (hero, print, thumbnail, ...) to a size; `default` for everything else",
  examples: [{ hero: "4K", print: "4K", "large-display": "4K", default: "2K" }],
})

/** `resolution`: pick the size from `use` unless the request set one. @category stages */
export const resolution: StageDefinition<typeof ResolutionConfig.Type> = {
  key: "resolution",
  description: "Map the request's `use` to an image size (explicit `size` wins)",
  schema: ResolutionConfig,
  make: (config) => (next) => (planned) => {
    if (planned.request.size !== undefined) return next({ ...planned, size: planned.request.size })
    const use = planned.request.use
    const size = (use !== undefined && Object.hasOwn(config, use) ? config[use] : undefined) ?? config.default
    return next(size === undefined ? planned : { ...planned, size })
  },
}

// ---------------------------------------------------------------------------------------------------
// route

const RouteConfig = Schema.Struct({
  high: Schema.optional(Schema.String),
  normal: Schema.optional(Schema.String),
  low: Schema.optional(Schema.String),
  default: Schema.optional(Schema.String),
}).annotate({
  description: "Map `priority` to a model id; `default` for the rest",
  examples: [{ low: "gemini-2.5-flash-image", default: "gemini-3-pro-image" }],
})

const modelFindings = (models: ReadonlyArray<readonly [string, string | undefined]>): ReadonlyArray<Finding> =>
  models.flatMap(([key, model]) =>
    model === undefined || findModel(model) !== undefined
      ? []
      : [
          {
            path: [key],
            message: `unknown model "${model}": Peel has no price or size table for it`,
            severity: "warning" as const,
          },
        ],
  )

/** `route`: pick the model from `priority` unless the request set one. @category stages */
export const route: StageDefinition<typeof RouteConfig.Type> = {
  key: "route",
  description: "Map the request's `priority` to a model (explicit `model` wins)",
  schema: RouteConfig,
  check: (config) => modelFindings(Object.entries(config)),
  make: (config) => (next) => (planned) => {
    if (planned.request.model !== undefined) return next({ ...planned, model: resolveModel(planned.request.model) })
    const model = config[planned.request.priority ?? "normal"] ?? config.default
    return next(model === undefined ? planned : { ...planned, model: resolveModel(model) })
  },
}

// ---------------------------------------------------------------------------------------------------
// select

const SelectConfig = Schema.Struct({
  strategy: Schema.optional(Schema.Literals(["ordered", "cheapest"])).annotate({
    description: "ordered: as listed; cheapest: by each channel's expected price for this request",
  }),
  channels: Schema.Array(Schema.String).annotate({ description: "Candidate channel names" }),
}).annotate({ description: "Order the candidate channels for each request" })

const channelFindings = (
  names: ReadonlyArray<string>,
  known: ReadonlyArray<string>,
  pathPrefix: ReadonlyArray<string>,
): ReadonlyArray<Finding> =>
  names.flatMap((name, index) =>
    known.includes(name)
      ? []
      : [
          {
            path: [...pathPrefix, index],
            message: `unknown channel "${name}" (defined: ${known.join(", ") || "none"})`,
            severity: "error" as const,
          },
        ],
  )

/** `select`: order the candidate channels. Channels that cannot serve a request are skipped later, before any call. @category stages */
export const select: StageDefinition<typeof SelectConfig.Type> = {
  key: "select",
  description: "Order the candidate channels: ordered or cheapest",
  schema: SelectConfig,
  check: (config, pipeline) => channelFindings(config.channels, pipeline.channelNames, ["channels"]),
  make: (config, context) => (next) => (planned) => {
    if (config.strategy !== "cheapest") return next({ ...planned, candidates: config.channels })
    const request = toChannelRequest(planned)
    const priced = config.channels.map((name, index) => {
      const channel = context.channels.get(name)
      const price = channel === undefined || refusal(channel, request) !== undefined ? Infinity : channel.price(request)
      return { name, index, price }
    })
    priced.sort((left, right) => left.price - right.price || left.index - right.index)
    return next({ ...planned, candidates: priced.map((entry) => entry.name) })
  },
}

// ---------------------------------------------------------------------------------------------------
// generate

const GenerateConfig = Schema.Struct({
  timeout: Schema.optional(DurationMillis).annotate({
    description: "Give up on one attempt after this long (e.g. 90s)",
  }),
}).annotate({ description: "Call the candidate channels in order until one returns an image" })

/** The request as channels see it, with Peel's defaults (Pro model, 1K, 1:1) filled in. @category stages */
export const toChannelRequest = (planned: PlannedRequest): ChannelRequest => ({
  id: planned.id,
  prompt: planned.request.prompt,
  model:
    planned.model ?? (planned.request.model === undefined ? "gemini-3-pro-image" : resolveModel(planned.request.model)),
  size: planned.size ?? planned.request.size ?? "1K",
  aspectRatio: planned.aspectRatio ?? planned.request.aspectRatio ?? "1:1",
})

const outcomeOf = (exit: Exit.Exit<unknown, ChannelError>): { outcome: string; message?: string } => {
  if (Exit.isSuccess(exit)) return { outcome: "ok" }
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some"
    ? { outcome: error.value._tag, message: error.value.message }
    : { outcome: "Interrupted" }
}

/**
 * One attempt at one channel: refuse before calling when it cannot serve the request, bound it by the
 * timeout, record the attempt, and turn the image into a result.
 */
const attempt = (
  channel: Channel,
  planned: PlannedRequest,
  request: ChannelRequest,
  timeoutMillis: number | undefined,
): Effect.Effect<ImageResult, ChannelError> =>
  Effect.gen(function* () {
    const started = yield* Clock.currentTimeMillis
    const call =
      timeoutMillis === undefined
        ? channel.generate(request)
        : channel.generate(request).pipe(
            Effect.timeoutOrElse({
              duration: timeoutMillis,
              orElse: () =>
                Effect.fail(new Timeout({ channel: channel.name, message: `no answer within ${timeoutMillis} ms` })),
            }),
          )
    const exit = yield* Effect.exit(call)
    const latencyMs = (yield* Clock.currentTimeMillis) - started
    planned.attempts.push({ channel: channel.name, model: request.model, latencyMs, ...outcomeOf(exit) })
    if (Exit.isFailure(exit)) return yield* Effect.failCause(exit.cause)
    return toResult(channel, planned, request, exit.value, latencyMs)
  })

const toResult = (
  channel: Channel,
  planned: PlannedRequest,
  request: ChannelRequest,
  image: ChannelImage,
  latencyMs: number,
): ImageResult => {
  const info = inspectImage(image.bytes)
  return {
    id: planned.id,
    bytes: image.bytes,
    mimeType: info?.mimeType ?? image.mimeType,
    width: info?.width ?? 0,
    height: info?.height ?? 0,
    model: request.model,
    channel: channel.name,
    size: request.size,
    aspectRatio: request.aspectRatio,
    cached: false,
    placeholder: false,
    costUsd: image.costUsd ?? channel.price(request),
    ...(image.usage === undefined ? {} : { usage: image.usage }),
    latencyMs,
    attempts: [...planned.attempts],
    promptHash: canonicalHash(request),
  }
}

/**
 * `generate`: try the candidates in order. A channel that cannot serve the request is skipped before any
 * call; an error another channel might not have (`failover`) moves on to the next candidate; `Rejected`
 * and `ContentBlocked` stop at once. Retry, hedging and breakers wrap this later.
 *
 * @category stages
 */
export const generate: StageDefinition<typeof GenerateConfig.Type> = {
  key: "generate",
  description: "Call the candidate channels in order until one returns an image",
  schema: GenerateConfig,
  terminal: true,
  make: (config, context) => () => (planned) =>
    Effect.gen(function* () {
      const request = toChannelRequest(planned)
      const names = planned.candidates ?? [...context.channels.keys()]
      let lastError: ChannelError | undefined
      const skipped: Array<string> = []
      for (const name of names) {
        const channel = context.channels.get(name)
        if (channel === undefined) continue
        const reason = refusal(channel, request)
        if (reason !== undefined) {
          skipped.push(`${name}: ${reason}`)
          planned.attempts.push({
            channel: name,
            model: request.model,
            outcome: "Unsupported",
            message: reason,
            latencyMs: 0,
          })
          continue
        }
        const exit = yield* Effect.exit(attempt(channel, planned, request, config.timeout))
        if (Exit.isSuccess(exit)) return exit.value
        const error = Cause.findErrorOption(exit.cause)
        if (error._tag === "None" || !isChannelError(error.value)) return yield* Effect.failCause(exit.cause)
        lastError = error.value
        if (!lastError.failover) break
      }
      if (lastError !== undefined) return yield* Effect.fail(lastError)
      return yield* new NoChannel({
        message: `no channel can serve ${request.model} ${request.size} ${request.aspectRatio}${
          skipped.length === 0 ? " (no candidates)" : `: ${skipped.join("; ")}`
        }`,
      })
    }),
}

/** Every stage this core knows, by YAML key. @category stages */
export const definitions: ReadonlyArray<StageDefinition<any>> = [resolution, route, select, generate]

/** Compose middleware so the first wraps all the rest. @category stages */
export const compose = (middleware: ReadonlyArray<Middleware>, innermost: Handler): Handler =>
  middleware.reduceRight<Handler>((next, stage) => stage(next), innermost)
