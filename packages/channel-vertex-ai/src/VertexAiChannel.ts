/**
 * The Vertex AI channel: one `generateContent` call through the shared Gemini wire module (no copied
 * wire code), priced from `usageMetadata` at Google's catalog prices (Vertex and AI Studio charge the
 * same) unless a flat `price` is set.
 *
 * @since 0.1.0
 */
import { Catalog, type Channel, Errors, Image, Pricing, Units } from "@peel/contract"
import { GeminiWire } from "@peel/gemini-wire"
import { Effect, Redacted, Schema } from "effect"
import * as VertexAiClient from "./VertexAiClient.ts"

/** @category config */
export const Config = Schema.Struct({
  project: Schema.optional(Schema.String).annotate({
    description: "Google Cloud project (use ${GOOGLE_CLOUD_PROJECT}); required unless apiKey",
  }),
  location: Schema.optional(Schema.String).annotate({
    description: "Location; default global (Gemini 3 image models are served there)",
  }),
  apiKey: Schema.optional(Schema.RedactedFromValue(Schema.String)).annotate({
    description: "Express mode: an API key instead of a project",
  }),
  credentials: Schema.optional(Schema.String).annotate({
    description: "Service-account JSON file (relative to the pipeline file)",
  }),
  accessToken: Schema.optional(Schema.RedactedFromValue(Schema.String)).annotate({
    description:
      "A Bearer access token (e.g. from gcloud auth print-access-token); Application Default Credentials when unset",
  }),
  baseUrl: Schema.optional(Schema.String).annotate({
    description: "Endpoint root; the SDK's regional or global host when unset",
  }),
  apiVersion: Schema.optional(Schema.Literals(["v1", "v1beta1"])).annotate({
    description: "API version; the SDK's default (v1beta1) when unset",
  }),
  models: Schema.optional(Schema.Array(Schema.String)).annotate({
    description: "Model ids this channel serves; every catalog model by default",
  }),
  price: Schema.optional(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))).annotate({
    description: "Flat USD per image; Google's token price when unset",
  }),
  timeout: Schema.optional(Units.DurationMillis).annotate({
    description: "Per-request timeout inside the SDK, e.g. 120s",
  }),
}).check(
  Schema.makeFilter(
    (config: {
      readonly project?: string | undefined
      readonly apiKey?: unknown
      readonly credentials?: string | undefined
      readonly accessToken?: unknown
    }) => {
      if (config.apiKey !== undefined && config.project !== undefined)
        return "give either apiKey (express mode) or project (project mode), not both"
      if (config.apiKey === undefined && (config.project === undefined || config.project === ""))
        return "project is required unless apiKey (express mode) is given"
      if (config.credentials !== undefined && config.accessToken !== undefined)
        return "give either credentials or accessToken, not both"
      return true
    },
  ),
)

/** @category config */
export type Config = typeof Config.Type

const authOf = (config: Config, file: string): VertexAiClient.Auth => {
  if (config.apiKey !== undefined) return { _tag: "Express", apiKey: config.apiKey }
  const project = config.project ?? ""
  const location = config.location ?? "global"
  if (config.accessToken !== undefined && String(config.accessToken) !== "")
    return { _tag: "Token", project, location, accessToken: config.accessToken }
  if (config.credentials !== undefined) {
    const keyFile = config.credentials.startsWith("/")
      ? config.credentials
      : new URL(config.credentials, `file://${file}`).pathname
    return { _tag: "ServiceAccount", project, location, keyFile }
  }
  return { _tag: "Adc", project, location }
}

/** @category constructors */
export const make = (config: Config, context: Channel.MakeContext): Effect.Effect<Channel.Channel> =>
  Effect.sync(() => {
    const name = context.name
    for (const [field, secret] of [
      ["apiKey", config.apiKey],
      ["accessToken", config.accessToken],
    ] as const) {
      const weak = secret === undefined ? undefined : Errors.placeholderSecretWarning(field, Redacted.value(secret))
      if (weak !== undefined) context.warn(weak)
    }
    const client = VertexAiClient.make({
      channel: name,
      auth: authOf(config, context.file),
      ...(config.baseUrl === undefined ? {} : { baseUrl: config.baseUrl }),
      ...(config.apiVersion === undefined ? {} : { apiVersion: config.apiVersion }),
      ...(config.timeout === undefined ? {} : { timeoutMillis: config.timeout }),
    })
    const capabilities: Channel.Capabilities = {
      models: config.models ?? Object.keys(Catalog.models),
      referenceImages: Image.imageLimits.maxImages,
    }
    const price = (request: Channel.ChannelRequest) => config.price ?? Pricing.expectedRequestCost(request)
    const plugin = "vertex-ai"
    const generate = (request: Channel.ChannelRequest) =>
      Effect.gen(function* () {
        const options = GeminiWire.optionsOf(request, { name, plugin })
        const response = yield* client.generateContent(GeminiWire.buildRequest(request, request.model, options))
        return yield* GeminiWire.toChannelImage(name, request, response, config.price)
      })
    return { name, plugin, capabilities, price, generate, providerOptions: GeminiWire.ProviderOptions }
  })
