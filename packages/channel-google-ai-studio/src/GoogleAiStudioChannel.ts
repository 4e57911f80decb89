/**
 * The Google AI Studio channel: its YAML block ({@link Config}) and {@link make}, which turns a request
 * into one `generateContent` call through the shared Gemini wire module. Cost is computed from the
 * response's `usageMetadata` at the catalog's prices (or the configured flat `price`).
 *
 * @since 0.1.0
 */
import { Catalog, type Channel, Errors, Image, Pricing, Units } from "@peel/contract"
import { GeminiWire } from "@peel/gemini-wire"
import { Effect, Redacted, Schema } from "effect"
import * as GoogleAiStudioClient from "./GoogleAiStudioClient.ts"

/**
 * The channel's YAML block (everything but `plugin`).
 *
 * @category config
 */
export const Config = Schema.Struct({
  apiKey: Schema.RedactedFromValue(Schema.String).annotate({
    description:
      "API key (use ${GEMINI_API_KEY}); sent only in the x-goog-api-key header (or as a Bearer token with auth: bearer)",
  }),
  baseUrl: Schema.optional(Schema.String).annotate({
    description: "Endpoint root; default https://generativelanguage.googleapis.com",
  }),
  apiVersion: Schema.optional(Schema.Literals(["v1", "v1beta"])).annotate({
    description: "API version; the SDK's default (v1) when unset",
  }),
  auth: Schema.optional(Schema.Literals(["header", "bearer"])).annotate({
    description:
      "header: x-goog-api-key (Google). bearer: Authorization: Bearer (proxies' Gemini-native routes, e.g. laozhang)",
  }),
  models: Schema.optional(Schema.Array(Schema.String)).annotate({
    description: "Model ids this channel serves; every catalog model by default",
  }),
  price: Schema.optional(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))).annotate({
    description: "Flat USD per image (e.g. a proxy's price); Google's token price from the catalog when unset",
  }),
  timeout: Schema.optional(Units.DurationMillis).annotate({
    description: "Per-request timeout inside the SDK, e.g. 120s",
  }),
})

/** @category config */
export type Config = typeof Config.Type

export const defaultBaseUrl = "https://generativelanguage.googleapis.com"

/** Build the channel. @category constructors */
export const make = (config: Config, context: Channel.MakeContext): Effect.Effect<Channel.Channel> =>
  Effect.sync(() => {
    const name = context.name
    const weakKey = Errors.placeholderSecretWarning("apiKey", Redacted.value(config.apiKey))
    if (weakKey !== undefined) context.warn(weakKey)
    const client = GoogleAiStudioClient.make({
      channel: name,
      apiKey: config.apiKey,
      baseUrl: (config.baseUrl ?? defaultBaseUrl).replace(/\/+$/, ""),
      auth: config.auth ?? "header",
      ...(config.apiVersion === undefined ? {} : { apiVersion: config.apiVersion }),
      ...(config.timeout === undefined ? {} : { timeoutMillis: config.timeout }),
    })
    const models = config.models ?? Object.keys(Catalog.models)
    for (const model of models)
      if (Catalog.findModel(model) === undefined)
        context.warn(`model ${model} is not in Peel's catalog: its price and pixel size are unknown`)
    const capabilities: Channel.Capabilities = { models, referenceImages: Image.imageLimits.maxImages }
    const price = (request: Channel.ChannelRequest): number => config.price ?? Pricing.expectedRequestCost(request)
    const plugin = "google-ai-studio"

    const generate = (request: Channel.ChannelRequest) =>
      Effect.gen(function* () {
        const options = GeminiWire.optionsOf(request, { name, plugin })
        const parameters = GeminiWire.buildRequest(request, request.model, options)
        const response = yield* client.generateContent(parameters)
        return yield* GeminiWire.toChannelImage(name, request, response, config.price)
      })

    return { name, plugin, capabilities, price, generate, providerOptions: GeminiWire.ProviderOptions }
  })
