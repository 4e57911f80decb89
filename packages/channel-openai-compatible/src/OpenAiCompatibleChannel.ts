/**
 * The OpenAI-compatible proxy channel. It declares the sizes and aspect ratios it can honour — a chat
 * route that cannot set size is never chosen for a 4K request: `refuse` says why and `generate` fails
 * with `Unsupported` before any call — and reads the image from `message.images`, a markdown data-URI,
 * a bare data-URI or an https URL (downloaded within limits, never from a private address unless
 * `allowPrivateUrls`). Presets (`laozhang`) supply base URL, flat price and capabilities.
 *
 * @since 0.1.0
 */
import { Catalog, Channel, Errors, Units } from "@peel/contract"
import { ChatClient, OpenAiWire } from "@peel/openai-wire"
import { Effect, Redacted, Schema } from "effect"
import * as OpenAiCompatibleClient from "./OpenAiCompatibleClient.ts"
import { type Preset, presetNames, presets } from "./Presets.ts"

/** @category config */
export const Config = Schema.Struct({
  apiKey: Schema.RedactedFromValue(Schema.String).annotate({
    description: "Proxy key (use ${PROXY_API_KEY}); sent as a Bearer token",
  }),
  preset: Schema.optional(Schema.Literals(presetNames)).annotate({
    description: "Known proxy: supplies baseUrl, price, sizes, aspect ratios and models",
  }),
  baseUrl: Schema.optional(Schema.String).annotate({
    description: "Endpoint root ending in /v1 (required without a preset)",
  }),
  models: Schema.optional(Schema.Array(Schema.String)).annotate({ description: "Google model ids the proxy serves" }),
  modelIds: Schema.optional(Schema.Record(Schema.String, Schema.String)).annotate({
    description: "The proxy's own id per Google id",
  }),
  sizes: Schema.optional(Schema.Array(Schema.Literals(Catalog.Sizes))).annotate({
    description: "Sizes the proxy can honour (chat routes: 1K)",
  }),
  aspectRatios: Schema.optional(Schema.Array(Schema.Literals(Catalog.AspectRatios))).annotate({
    description: "Aspect ratios the proxy can honour (chat routes: 1:1)",
  }),
  price: Schema.optional(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))).annotate({
    description: "Flat USD per image",
  }),
  referenceImages: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 14 }))).annotate({
    description: "How many reference images the proxy takes as image_url parts (laozhang chat route: 0)",
  }),
  sendImageConfig: Schema.optional(Schema.Boolean).annotate({
    description: "Send image_config (aspect_ratio, image_size); off for plain chat proxies",
  }),
  allowPrivateUrls: Schema.optional(Schema.Boolean).annotate({
    description: "Allow downloading image URLs that resolve to private or loopback addresses",
  }),
  maxDownloadBytes: Schema.optional(Schema.Int.check(Schema.isGreaterThan(0))).annotate({
    description: "Largest image URL download accepted (default 50 MB)",
  }),
  timeout: Schema.optional(Units.DurationMillis).annotate({
    description: "Per-request timeout inside the SDK, e.g. 120s",
  }),
}).check(
  Schema.makeFilter((config: { readonly preset?: string | undefined; readonly baseUrl?: string | undefined }) =>
    config.preset !== undefined || config.baseUrl !== undefined ? true : "baseUrl is required unless a preset is given",
  ),
)

/** @category config */
export type Config = typeof Config.Type

const fallback: Preset = {
  baseUrl: "",
  price: 0.05,
  sizes: ["1K"],
  aspectRatios: ["1:1"],
  models: Object.keys(Catalog.models),
  sendImageConfig: false,
  referenceImages: 0,
  verified: "",
}

/** @category constructors */
export const make = (config: Config, context: Channel.MakeContext): Effect.Effect<Channel.Channel> =>
  Effect.sync(() => {
    const name = context.name
    const weakKey = Errors.placeholderSecretWarning("apiKey", Redacted.value(config.apiKey))
    if (weakKey !== undefined) context.warn(weakKey)
    const preset: Preset = config.preset === undefined ? fallback : presets[config.preset]
    const baseUrl = config.baseUrl ?? preset.baseUrl
    if (config.price === undefined && config.preset === undefined)
      context.warn(`no price set: assuming $${fallback.price} per image; set price for accurate cost accounting`)
    const client = OpenAiCompatibleClient.make({
      channel: name,
      apiKey: config.apiKey,
      baseUrl,
      ...(config.timeout === undefined ? {} : { timeoutMillis: config.timeout }),
    })
    const capabilities: Channel.Capabilities = {
      models: config.models ?? preset.models,
      sizes: config.sizes ?? preset.sizes,
      aspectRatios: config.aspectRatios ?? preset.aspectRatios,
      referenceImages: config.referenceImages ?? preset.referenceImages,
    }
    const plugin = "openai-compatible"
    const flatPrice = config.price ?? preset.price
    const sendImageConfig = config.sendImageConfig ?? preset.sendImageConfig
    const download = {
      maxBytes: config.maxDownloadBytes ?? 50 * 1024 * 1024,
      timeoutMillis: 60_000,
      allowPrivate: config.allowPrivateUrls ?? false,
    }
    const generate = (request: Channel.ChannelRequest) =>
      Effect.gen(function* () {
        const image = yield* ChatClient.generateImage({
          channel: name,
          client,
          body: OpenAiWire.buildRequest(request, {
            model: config.modelIds?.[request.model] ?? request.model,
            imageConfig: sendImageConfig,
            extra: Channel.optionsFor(request, { name, plugin }),
          }),
          download,
        })
        return { ...image, costUsd: image.costUsd ?? flatPrice }
      })
    return {
      name,
      plugin,
      capabilities,
      price: () => flatPrice,
      generate,
      providerOptions: OpenAiWire.ExtraBody,
    }
  })
