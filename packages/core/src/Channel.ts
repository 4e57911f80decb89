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
import type { AspectRatio, Size } from "./Catalog.ts"
import type { ChannelError, ConfigError, MissingSecret } from "./Errors.ts"
import type { Usage } from "./Request.ts"

/** The contract version this core implements. @category contract */
export const specificationVersion = 1 as const

/** A request as a channel sees it: everything decided, nothing optional. @category contract */
export interface ChannelRequest {
  readonly id: string
  readonly prompt: string
  /** Google's model id (catalog key); the channel maps it to its own id. */
  readonly model: string
  readonly size: Size
  readonly aspectRatio: AspectRatio
}

/** What a channel returns for one successful attempt. Core sniffs dimensions and prices it. @category contract */
export interface ChannelImage {
  readonly bytes: Uint8Array
  readonly mimeType: string
  readonly usage?: Usage
  /**
   * What this call cost in USD, as the channel knows it: the upstream's authoritative figure (OpenRouter
   * `usage.cost`), usage × catalog prices (`Pricing.costFromUsage`) for token-priced channels, or the
   * configured flat price. When absent core uses `price(request)`.
   */
  readonly costUsd?: number
  /** The model the upstream says it used. */
  readonly modelVersion?: string
}

/** What a channel can serve. `undefined` for a field means "any". @category contract */
export interface Capabilities {
  readonly models: ReadonlyArray<string>
  readonly sizes?: ReadonlyArray<Size>
  readonly aspectRatios?: ReadonlyArray<AspectRatio>
  /** True for channels that only take batch work (`urgency: batch`). */
  readonly batch?: boolean
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
  /** One attempt. Fails with a typed error; never retries; aborts its HTTP request when interrupted. */
  readonly generate: (request: ChannelRequest) => Effect.Effect<ChannelImage, ChannelError>
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
  readonly specificationVersion: typeof specificationVersion
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
  return undefined
}

/** `refuse` if the channel has one, else {@link supportCheck}. @category contract */
export const refusal = (channel: Channel, request: ChannelRequest): string | undefined =>
  channel.refuse?.(request) ?? supportCheck(channel.capabilities, request)

/** Identity helper that checks a plugin object against the contract. @category contract */
export const definePlugin = <Config>(plugin: ChannelPlugin<Config>): ChannelPlugin<Config> => plugin
