/**
 * The channel plugin contract (DESIGN §5). A plugin package's default export is a {@link ChannelPlugin}:
 * a name, a Schema for its YAML block, and `make(config)` building a {@link Channel} in a Scope (so SDK
 * clients close). A channel states what it can serve and makes **one** attempt per `generate` call: no
 * retries of its own (SDK retries off), interruptible (interruption aborts the HTTP request).
 *
 * Versioned by {@link specificationVersion} so core can accept old and new plugins side by side.
 *
 * @since 0.1.0
 */
import type { Effect, Schema, Scope } from "effect"
import { type AspectRatio, findModel, type Size } from "./Catalog.ts"
import type { ChannelError, ConfigError, MissingSecret } from "./Errors.ts"
import type { Usage } from "./Request.ts"

/**
 * The contract version this core implements. Version 2 added the batch facet and the optional request
 * fields (reference images, seed, provider options); core still accepts version 1 plugins, whose
 * channels simply never see those fields. @category contract
 */
export const specificationVersion = 2 as const

/** Contract versions this core accepts. @category contract */
export const acceptedVersions: ReadonlyArray<number> = [1, 2]

/** A reference image sent with the prompt (contract v2). @category contract */
export interface ReferenceImage {
  readonly bytes: Uint8Array
  readonly mimeType: string
}

/**
 * A request as a channel sees it: everything decided by the plan, nothing optional that matters to the
 * image. Core has already checked that the channel can serve it ({@link refusal}): channels do not check
 * again.
 *
 * @category contract
 */
export interface ChannelRequest {
  readonly id: string
  readonly prompt: string
  /** Google's model id (catalog key); the channel maps it to its own id. */
  readonly model: string
  readonly size: Size
  readonly aspectRatio: AspectRatio
  /** Reference images (contract v2; empty or absent for text-to-image). */
  readonly images?: ReadonlyArray<ReferenceImage> | undefined
  /** Which of several images of one request this is (contract v2): distinct variants are distinct images. */
  readonly variant?: number | undefined
  /** Seed, where the upstream takes one (contract v2). */
  readonly seed?: number | undefined
  /**
   * Channel-specific options (contract v2), as the request gave them: keyed by channel name or plugin
   * name, each checked by that channel's {@link Channel.providerOptions} Schema before any call. A channel
   * reads its own with {@link optionsFor}.
   */
  readonly providerOptions?: Readonly<Record<string, unknown>> | undefined
  /** Ask for the image alone, without text (Gemini `responseModalities: ["IMAGE"]`). */
  readonly imageOnly?: boolean | undefined
}

/**
 * The provider options meant for one channel: the entry under its name, else under its plugin's name;
 * `undefined` when the request has none for it.
 *
 * @category contract
 */
export const optionsFor = (
  request: ChannelRequest,
  channel: { readonly name: string; readonly plugin: string },
): Readonly<Record<string, unknown>> | undefined => {
  const all = request.providerOptions
  if (all === undefined) return undefined
  const own = Object.hasOwn(all, channel.name)
    ? all[channel.name]
    : Object.hasOwn(all, channel.plugin)
      ? all[channel.plugin]
      : undefined
  return typeof own === "object" && own !== null ? (own as Readonly<Record<string, unknown>>) : undefined
}

/**
 * What the upstream billed for one call, as far as the channel knows: the usage it reported and, when the
 * upstream states a price or the channel is flat-priced, the USD figure. Core prices the attempt from it
 * (once, in `Pricing.attemptCost`): `costUsd`, else usage × catalog prices, else nothing billed.
 *
 * @category contract
 */
export interface Billing {
  readonly usage?: Usage | undefined
  /** The upstream's authoritative figure (OpenRouter `usage.cost`) or the channel's configured flat price. */
  readonly costUsd?: number | undefined
}

/**
 * What a channel returns for one successful call: the image bytes as the upstream sent them (decoded from
 * base64, not yet checked — core checks and sniffs them once) and what the call was billed.
 *
 * @category contract
 */
export interface ChannelImage extends Billing {
  readonly bytes: Uint8Array
  /** The MIME type the upstream claimed; core trusts the bytes, not this. */
  readonly mimeType: string
  /** The model the upstream says it used. */
  readonly modelVersion?: string | undefined
  /** Text the model returned beside the image, if any. */
  readonly text?: string | undefined
}

/**
 * The optional batch facet (contract v2): submit many requests as one job, poll it, collect its results.
 * A channel with this facet takes `urgency: batch` work.
 *
 * @category contract
 */
export interface BatchFacet {
  readonly submit: (
    requests: ReadonlyArray<ChannelRequest>,
    options: { readonly displayName: string },
  ) => Effect.Effect<BatchJob, ChannelError>
  readonly poll: (job: string) => Effect.Effect<BatchJob, ChannelError>
  readonly collect: (
    job: string,
  ) => Effect.Effect<ReadonlyArray<{ readonly id: string; readonly result: ChannelImage | ChannelError }>, ChannelError>
  readonly cancel?: (job: string) => Effect.Effect<void, ChannelError>
  /**
   * The job submitted under `displayName`, if the upstream has one. Creating a job is not idempotent, so a
   * submission journaled but never confirmed (a crash in between) is looked up here before it is sent again.
   */
  readonly find?: (displayName: string) => Effect.Effect<BatchJob | undefined, ChannelError>
  /** How large one job may be; callers split bigger work into several jobs. */
  readonly limits?: { readonly maxRequests: number; readonly maxBytes: number }
  /** What a request adds to a job's size, in bytes (for `limits.maxBytes`). */
  readonly sizeOf?: (request: ChannelRequest) => number
}

/** A batch job as the upstream reports it. @category contract */
export interface BatchJob {
  readonly name: string
  readonly displayName?: string | undefined
  readonly state: "pending" | "running" | "succeeded" | "failed" | "cancelled" | "expired"
  readonly done?: number | undefined
  readonly failed?: number | undefined
  readonly total?: number | undefined
  /** Why the job failed, when it did. */
  readonly error?: string | undefined
}

/** What a channel can serve. `undefined` for a field means "any". @category contract */
export interface Capabilities {
  readonly models: ReadonlyArray<string>
  readonly sizes?: ReadonlyArray<Size>
  readonly aspectRatios?: ReadonlyArray<AspectRatio>
  /** True for channels that only take batch work (`urgency: batch`); priced at the batch tier. */
  readonly batch?: boolean
  /** How many reference images one request may carry (0 or absent: none; contract v2). */
  readonly referenceImages?: number
}

/** A channel built from a pipeline's YAML block. @category contract */
export interface Channel {
  /** The name the pipeline gave it (`channels.<name>`). */
  readonly name: string
  /** The plugin that built it. */
  readonly plugin: string
  readonly capabilities: Capabilities
  /** Expected price in USD of one image for this request, before any call. */
  readonly price: (request: ChannelRequest) => number
  /**
   * Why this channel cannot serve the request, or `undefined` when it can. Checked before any call;
   * {@link supportCheck} gives the default from {@link Capabilities}.
   */
  readonly refuse?: (request: ChannelRequest) => string | undefined
  /**
   * One attempt. Fails with a typed error (carrying {@link Billing} when the upstream billed a call whose
   * answer is unusable); never retries; aborts its HTTP request when interrupted.
   */
  readonly generate: (request: ChannelRequest) => Effect.Effect<ChannelImage, ChannelError>
  /** Batch work (contract v2), for channels that take it. */
  readonly batch?: BatchFacet
  /**
   * The Schema of the `providerOptions` this channel takes (contract v2), decoded strictly before any
   * call; a request giving options to a channel without one is refused.
   */
  readonly providerOptions?: Schema.Decoder<unknown>
}

/** Given to `make`: where the pipeline lives and how to log warnings. @category contract */
export interface MakeContext {
  /** Name of the channel in the pipeline. */
  readonly name: string
  /** The pipeline file, for resolving relative paths. */
  readonly file: string
  /** Report a setting the plugin ignores or a doubtful value; shown by `peel validate`. */
  readonly warn: (message: string) => void
}

/** A channel plugin: the default export of a channel package. @category contract */
export interface ChannelPlugin<Config = unknown> {
  /** 2 for this contract; 1 is still accepted. */
  readonly specificationVersion: 1 | 2
  /** The plugin's name, as written after `plugin:` for first-party ones. */
  readonly name: string
  /** One-line description for docs and the JSON Schema. */
  readonly description: string
  /**
   * The Schema of the YAML block, without `plugin`. Decoded strictly (unknown keys are errors) after
   * `${VAR}` interpolation. Secrets should be `Schema.RedactedFromValue(Schema.String)`.
   */
  readonly config: Schema.Decoder<Config>
  readonly make: (
    config: Config,
    context: MakeContext,
  ) => Effect.Effect<Channel, ConfigError | MissingSecret, Scope.Scope>
}

/**
 * A plugin whose configuration type is not known statically (the loader's view of every plugin): its
 * `make` accepts only the configuration its own `config` Schema decoded.
 *
 * @category contract
 */
export interface AnyChannelPlugin {
  readonly specificationVersion: 1 | 2
  readonly name: string
  readonly description: string
  readonly config: Schema.Top
  readonly make: (
    config: never,
    context: MakeContext,
  ) => Effect.Effect<Channel, ConfigError | MissingSecret, Scope.Scope>
}

/**
 * Why `channel` cannot serve `request` according to its declared capabilities, or `undefined`.
 *
 * @category contract
 */
export const supportCheck = (capabilities: Capabilities, request: ChannelRequest): string | undefined => {
  if (!capabilities.models.includes(request.model)) return `does not serve model ${request.model}`
  if (capabilities.sizes !== undefined && !capabilities.sizes.includes(request.size))
    return `cannot make ${request.size} images (serves ${capabilities.sizes.join(", ")})`
  if (capabilities.aspectRatios !== undefined && !capabilities.aspectRatios.includes(request.aspectRatio))
    return `cannot make aspect ratio ${request.aspectRatio} (serves ${capabilities.aspectRatios.join(", ")})`
  const images = request.images?.length ?? 0
  if (images > (capabilities.referenceImages ?? 0))
    return capabilities.referenceImages === undefined || capabilities.referenceImages === 0
      ? "does not take reference images"
      : `takes at most ${capabilities.referenceImages} reference images (got ${images})`
  return undefined
}

/**
 * Why no channel can serve `request` because the model itself does not make its aspect ratio (catalog
 * `aspectRatios`: 1:4, 4:1, 1:8 and 8:1 are Nano Banana 2 only), or `undefined`. Sizes are clamped by the
 * planner instead; an aspect ratio is refused, since none is "near enough" to substitute silently.
 *
 * @category contract
 */
export const modelRefusal = (request: ChannelRequest): string | undefined => {
  const ratios = findModel(request.model)?.aspectRatios
  return ratios === undefined || ratios.includes(request.aspectRatio)
    ? undefined
    : `model ${request.model} does not make aspect ratio ${request.aspectRatio} (makes ${ratios.join(", ")})`
}

/** {@link modelRefusal}, then `refuse` if the channel has one, else {@link supportCheck}. @category contract */
export const refusal = (channel: Channel, request: ChannelRequest): string | undefined =>
  modelRefusal(request) ?? channel.refuse?.(request) ?? supportCheck(channel.capabilities, request)

/** Identity helper that checks a plugin object against the contract. @category contract */
export const definePlugin = <Config>(plugin: ChannelPlugin<Config>): ChannelPlugin<Config> => plugin
