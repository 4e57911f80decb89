/**
 * The OpenRouter channel: `modalities` and `image_config` sent, images read from `message.images`, cost
 * taken from `usage.cost` (authoritative), per-channel model ids (`google/gemini-3-pro-image`).
 * Expected price before a call: Google's standard price plus OpenRouter's markup, unless `price` is set.
 *
 * @since 0.1.0
 */
import { Catalog, Channel, Errors, Image, Pricing, Units } from "@peel/contract"
import { ChatClient, OpenAiWire } from "@peel/openai-wire"
import { Effect, Redacted, Schema } from "effect"
import * as OpenRouterClient from "./OpenRouterClient.ts"

/** OpenRouter's markup over Google's price, used only for the expected price before a call. */
export const markup = 1.05

/** @category config */
export const Config = Schema.Struct({
  apiKey: Schema.RedactedFromValue(Schema.String).annotate({
    description: "OpenRouter key (use ${OPENROUTER_API_KEY}); sent as a Bearer token",
  }),
  baseUrl: Schema.optional(Schema.String).annotate({
    description: "Endpoint root ending in /api/v1; default https://openrouter.ai/api/v1",
  }),
  models: Schema.optional(Schema.Array(Schema.String)).annotate({
    description: "Google model ids this channel serves; every catalog model by default",
  }),
  modelIds: Schema.optional(Schema.Record(Schema.String, Schema.String)).annotate({
    description:
      "OpenRouter slug per Google id, overriding the catalog (e.g. gemini-3-pro-image: google/gemini-3-pro-image-preview)",
  }),
  price: Schema.optional(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))).annotate({
    description: "Expected USD per image before a call",
  }),
  timeout: Schema.optional(Units.DurationMillis).annotate({
    description: "Per-request timeout inside the SDK, e.g. 120s",
  }),
})

/** @category config */
export type Config = typeof Config.Type

/**
 * The `providerOptions` OpenRouter takes: its provider routing object, sampling and a user id, passed
 * through in the body (https://openrouter.ai/docs provider routing).
 *
 * @category config
 */
export const ProviderOptions = Schema.Struct({
  provider: Schema.optional(
    Schema.Struct({
      order: Schema.optional(Schema.Array(Schema.String)),
      only: Schema.optional(Schema.Array(Schema.String)),
      ignore: Schema.optional(Schema.Array(Schema.String)),
      allow_fallbacks: Schema.optional(Schema.Boolean),
      sort: Schema.optional(Schema.Literals(["price", "throughput", "latency"])),
      data_collection: Schema.optional(Schema.Literals(["allow", "deny"])),
    }),
  ),
  temperature: Schema.optional(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 2 }))),
  top_p: Schema.optional(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  user: Schema.optional(Schema.String),
})

/** @category constructors */
export const make = (config: Config, context: Channel.MakeContext): Effect.Effect<Channel.Channel> =>
  Effect.sync(() => {
    const name = context.name
    const weakKey = Errors.placeholderSecretWarning("apiKey", Redacted.value(config.apiKey))
    if (weakKey !== undefined) context.warn(weakKey)
    const client = OpenRouterClient.make({
      channel: name,
      apiKey: config.apiKey,
      ...(config.baseUrl === undefined ? {} : { baseUrl: config.baseUrl }),
      ...(config.timeout === undefined ? {} : { timeoutMillis: config.timeout }),
    })
    const capabilities: Channel.Capabilities = {
      models: config.models ?? Object.keys(Catalog.models),
      referenceImages: Image.imageLimits.maxImages,
    }
    const plugin = "openrouter"
    const modelId = (model: string) => config.modelIds?.[model] ?? `google/${Catalog.resolveModel(model)}`
    const price = (request: Channel.ChannelRequest) =>
      config.price ?? Math.round(Pricing.expectedRequestCost(request) * markup * 1e6) / 1e6
    const generate = (request: Channel.ChannelRequest) =>
      Effect.gen(function* () {
        const image = yield* ChatClient.generateImage({
          channel: name,
          client,
          body: OpenAiWire.buildRequest(request, {
            model: modelId(request.model),
            imageConfig: true,
            extra: Channel.optionsFor(request, { name, plugin }),
          }),
          download: { maxBytes: 50 * 1024 * 1024, timeoutMillis: 60_000, allowPrivate: false },
        })
        return { ...image, costUsd: image.costUsd ?? price(request) }
      })
    return { name, plugin, capabilities, price, generate, providerOptions: ProviderOptions }
  })
