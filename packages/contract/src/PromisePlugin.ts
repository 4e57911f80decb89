/**
 * Channel plugins without Effect: an author writes `make` and `generate` as async functions and checks
 * the YAML block with any [Standard Schema](https://standardschema.dev) validator (Zod, Valibot, ArkType,
 * Effect's `Schema.toStandardSchemaV1`) or a plain function; {@link definePromisePlugin} adapts it to the
 * Effect contract ({@link ChannelPlugin}), so core treats it exactly like a first-party plugin:
 *
 * ```ts
 * export default definePromisePlugin({
 *   name: "my-proxy",
 *   description: "My image proxy",
 *   config: (input) => MyConfig.parse(input),            // or a Standard Schema
 *   make: async (config, context) => ({
 *     capabilities: { models: ["gemini-3-pro-image"] },
 *     price: () => 0.05,
 *     generate: async (request, { signal }) => {
 *       const response = await fetch(config.url, { method: "POST", body: request.prompt, signal })
 *       if (!response.ok) throw { status: response.status, message: await response.text() }
 *       return { bytes: new Uint8Array(await response.arrayBuffer()), mimeType: "image/png", costUsd: 0.05 }
 *     },
 *   }),
 * })
 * ```
 *
 * What `generate` throws becomes a typed channel error: a Peel error (`new Errors.RateLimited(...)`) as it
 * is; `{ status, message, retryAfterMs? }` by HTTP status (429 rate limited, 401/403 unauthorized, 402
 * credits, 400/404/422 rejected, 5xx unavailable); an abort or anything else unavailable. The signal
 * aborts when core interrupts the attempt (a timeout, a hedge that won, the caller's cancel).
 *
 * @since 0.3.0
 */
import { Effect, Schema, SchemaIssue } from "effect"
import type { Capabilities, ChannelImage, ChannelPlugin, ChannelRequest, MakeContext } from "./Channel.ts"
import * as Errors from "./Errors.ts"

/** The Standard Schema v1 interface (https://standardschema.dev), as much of it as Peel uses. @category models */
export interface StandardSchemaV1<Output = unknown> {
  readonly "~standard": {
    readonly version: 1
    readonly vendor: string
    readonly validate: (value: unknown) =>
      | { readonly value: Output; readonly issues?: undefined }
      | {
          readonly issues: ReadonlyArray<{
            readonly message: string
            readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined
          }>
        }
      | Promise<unknown>
  }
}

/** A config check: a Standard Schema, or a function that returns the config or throws. @category models */
export type ConfigValidator<Config> = StandardSchemaV1<Config> | ((input: unknown) => Config)

/** A channel written with Promises. @category models */
export interface PromiseChannel {
  readonly capabilities: Capabilities
  /** Expected USD of one image for this request, before any call. */
  readonly price: (request: ChannelRequest) => number
  /** Why this channel cannot serve the request (checked before any call); `undefined` when it can. */
  readonly refuse?: (request: ChannelRequest) => string | undefined
  /** One attempt. Never retry here (core does); stop when `signal` aborts. */
  readonly generate: (request: ChannelRequest, options: { readonly signal: AbortSignal }) => Promise<ChannelImage>
  /** The `providerOptions` this channel takes, if any. */
  readonly providerOptions?: ConfigValidator<unknown>
  /** Called once when the pipeline closes. */
  readonly close?: () => void | Promise<void>
}

/** A plugin written with Promises. @category models */
export interface PromisePluginDefinition<Config> {
  readonly name: string
  readonly description: string
  readonly config: ConfigValidator<Config>
  readonly make: (config: Config, context: MakeContext) => PromiseChannel | Promise<PromiseChannel>
}

// Some Standard Schemas are callable (Effect's are classes): look for "~standard", whatever the type.
const isStandard = (validator: unknown): validator is StandardSchemaV1 =>
  (typeof validator === "object" || typeof validator === "function") && validator !== null && "~standard" in validator

/**
 * A validator as an Effect Schema decoder, its issues kept with their paths (so the loader reports
 * `channels.NAME.KEY: message` at the right line).
 *
 * @category adapters
 */
export const schemaOf = <Config>(validator: ConfigValidator<Config>): Schema.Decoder<Config> =>
  Schema.declareConstructor<Config, unknown>()([], () => (input, ast) => {
    if (!isStandard(validator)) {
      try {
        return Effect.succeed((validator as (input: unknown) => Config)(input))
      } catch (error) {
        return Effect.fail(
          new SchemaIssue.InvalidValue({ message: error instanceof Error ? error.message : String(error) }),
        )
      }
    }
    const result = validator["~standard"].validate(input)
    if (result instanceof Promise)
      return Effect.fail(new SchemaIssue.InvalidValue({ message: "asynchronous config validators are not supported" }))
    const checked = result as {
      readonly value?: Config
      readonly issues?: ReadonlyArray<{ message: string; path?: ReadonlyArray<PropertyKey | { key: PropertyKey }> }>
    }
    if (checked.issues === undefined || checked.issues.length === 0) return Effect.succeed(checked.value as Config)
    const issues = checked.issues.map(
      (issue) =>
        new SchemaIssue.Pointer(
          (issue.path ?? []).map((segment) => (typeof segment === "object" ? segment.key : segment)),
          new SchemaIssue.InvalidValue({ message: issue.message }),
        ),
    )
    return Effect.fail(
      new SchemaIssue.Composite(ast, issues as [SchemaIssue.Issue, ...Array<SchemaIssue.Issue>], input),
    )
  }) as unknown as Schema.Decoder<Config>

/**
 * What a Promise channel threw, as a typed channel error.
 *
 * @category adapters
 */
export const toChannelError = (channel: string, thrown: unknown): Errors.ChannelError => {
  if (Errors.isChannelError(thrown)) return thrown
  const fields = thrown as { status?: unknown; message?: unknown; retryAfterMs?: unknown } | undefined
  const message =
    typeof fields?.message === "string"
      ? Errors.redact(fields.message, [], 300)
      : thrown instanceof Error
        ? thrown.message
        : String(thrown)
  const status = typeof fields?.status === "number" ? fields.status : undefined
  const retryAfterMs = typeof fields?.retryAfterMs === "number" ? { retryAfterMs: fields.retryAfterMs } : {}
  if (status === undefined) return new Errors.Unavailable({ channel, message })
  const base = { channel, status, message }
  if (status === 429) return new Errors.RateLimited({ ...base, ...retryAfterMs })
  if (status === 401 || status === 403) return new Errors.Unauthorized(base)
  if (status === 402) return new Errors.InsufficientCredits(base)
  if (status === 400 || status === 404 || status === 422) return new Errors.Rejected(base)
  return new Errors.Unavailable({ ...base, ...retryAfterMs })
}

/**
 * Adapt a Promise plugin to the channel contract (specification version 2).
 *
 * @category constructors
 */
export const definePromisePlugin = <Config>(definition: PromisePluginDefinition<Config>): ChannelPlugin<Config> => ({
  specificationVersion: 2,
  name: definition.name,
  description: definition.description,
  config: schemaOf(definition.config),
  make: (config, context) =>
    Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => definition.make(config, context),
        catch: (error) =>
          new Errors.ConfigError({
            file: context.file,
            problems: [
              new Errors.ConfigProblem({
                file: context.file,
                line: 1,
                column: 1,
                severity: "error",
                message: `channels.${context.name}: ${error instanceof Error ? error.message : String(error)}`,
              }),
            ],
          }),
      }),
      (channel) => (channel.close === undefined ? Effect.void : Effect.promise(async () => channel.close?.())),
    ).pipe(
      Effect.map((channel) => ({
        name: context.name,
        plugin: definition.name,
        capabilities: channel.capabilities,
        price: channel.price,
        ...(channel.refuse === undefined ? {} : { refuse: channel.refuse }),
        ...(channel.providerOptions === undefined ? {} : { providerOptions: schemaOf(channel.providerOptions) }),
        generate: (request: ChannelRequest) =>
          Effect.tryPromise({
            try: (signal) => channel.generate(request, { signal }),
            catch: (thrown) => toChannelError(context.name, thrown),
          }),
      })),
    ),
})
