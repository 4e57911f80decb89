/**
 * Wire conversion for the example channel: a Peel `ChannelRequest` becomes an OpenAI chat completion
 * request, and the answer's `message.content` (a markdown data-URI image, the way laozhang-style proxies
 * answer) becomes image bytes. Such proxies offer no size or aspect-ratio control, so the channel serves
 * 1K 1:1 only and refuses anything else before calling.
 *
 * @since 0.1.0
 */
import { type Channel, Errors, Image } from "@peel/contract"
import { Effect, Redacted, Result, Schema, type Scope } from "effect"
import * as ExampleClient from "./ExampleClient.ts"
import * as Failures from "./internal/errors.ts"

/** The plugin's name, as written after `plugin:` when registered by name. @category constants */
export const pluginName = "example"

/** Models served when `models` is not set. @category constants */
export const defaultModels: ReadonlyArray<string> = [
  "gemini-3-pro-image",
  "gemini-3-pro-image-preview",
  "gemini-2.5-flash-image",
]

/** Flat price per image (USD) when `price` is not set. @category constants */
export const defaultPrice = 0.05

/**
 * The YAML block (without `plugin`). The key is `Redacted`, so it prints as `<redacted>`.
 *
 * @category config
 */
export const Config = Schema.Struct({
  apiKey: Schema.RedactedFromValue(Schema.String).annotate({ description: "API key, sent as a Bearer token" }),
  baseUrl: Schema.String.annotate({
    description: "Everything before /chat/completions, e.g. https://api.example.com/v1",
  }),
  models: Schema.optional(Schema.Array(Schema.String)).annotate({ description: "Google model ids this proxy serves" }),
  price: Schema.optional(Schema.Number.check(Schema.isFinite(), Schema.isGreaterThanOrEqualTo(0))).annotate({
    description: "USD per image (flat)",
  }),
})
/** @category config */
export type Config = typeof Config.Type

const ChatCompletion = Schema.Struct({
  choices: Schema.optional(
    Schema.Array(
      Schema.Struct({
        finish_reason: Schema.optional(Schema.NullOr(Schema.String)),
        message: Schema.optional(Schema.Struct({ content: Schema.optional(Schema.NullOr(Schema.String)) })),
      }),
    ),
  ),
  error: Schema.optional(
    Schema.Struct({
      code: Schema.optional(Schema.NullOr(Schema.Union([Schema.Number, Schema.String]))),
      message: Schema.optional(Schema.String),
    }),
  ),
  usage: Schema.optional(
    Schema.Struct({
      prompt_tokens: Schema.optional(Schema.Number),
      completion_tokens: Schema.optional(Schema.Number),
    }),
  ),
})
const decodeChatCompletion = Schema.decodeUnknownResult(Schema.fromJsonString(ChatCompletion))

const ErrorBody = Schema.Struct({ error: Schema.Struct({ message: Schema.optional(Schema.String) }) })
const decodeErrorBody = Schema.decodeUnknownResult(Schema.fromJsonString(ErrorBody))

/** The request body: the prompt as one user message, Google's model id. @category wire */
export const toBody = (request: Channel.ChannelRequest) => ({
  model: request.model,
  messages: [{ role: "user", content: request.prompt }],
  stream: false,
})

/** A reply → image, or the classified failure. @category wire */
export const fromReply = (
  channel: string,
  reply: ExampleClient.Reply,
  secrets: ReadonlyArray<string>,
  costUsd: number,
): Result.Result<Channel.ChannelImage, Errors.ChannelError> => {
  const quote = (text: string) => Errors.describeBody(text, secrets)
  if (reply.status < 200 || reply.status >= 300) {
    const body = decodeErrorBody(reply.text)
    const detail =
      Result.isSuccess(body) && body.success.error.message !== undefined
        ? quote(body.success.error.message)
        : quote(reply.text)
    return Result.fail(Failures.fromStatus({ channel, status: reply.status, detail, retryAfter: reply.retryAfter }))
  }
  const decoded = decodeChatCompletion(reply.text)
  if (Result.isFailure(decoded)) {
    return Result.fail(Failures.malformed(channel, `answer is not a chat completion: ${quote(reply.text)}`))
  }
  const completion = decoded.success
  if (completion.error !== undefined) {
    const code = Number(completion.error.code)
    return Result.fail(
      Failures.fromStatus({
        channel,
        status: Number.isInteger(code) && code >= 400 ? code : 502,
        detail: `error inside a 200 answer: ${quote(completion.error.message ?? "")}`,
        retryAfter: reply.retryAfter,
      }),
    )
  }
  const choice = completion.choices?.[0]
  if (choice === undefined) return Result.fail(Failures.malformed(channel, "answer has no choices"))
  const content = choice.message?.content ?? ""
  const found = Image.findImageInText(content)
  if (found === undefined || found._tag === "Url") {
    const what = found === undefined ? "no image" : "an image link (this channel reads inline images only)"
    return Result.fail(Failures.noImage(channel, `answer has ${what}: ${quote(content)}`, choice.finish_reason))
  }
  // Contract v2: decode the base64 only; core checks once that the bytes are a whole image (and bills a
  // truncated one as the billed failure it is).
  const bytes = Image.decodeBase64(found.base64)
  if (bytes === undefined) return Result.fail(Failures.malformed(channel, "image data is not valid base64"))
  const usage = completion.usage
  return Result.succeed({
    bytes,
    mimeType: found.mimeType,
    costUsd,
    ...(usage === undefined
      ? {}
      : {
          usage: {
            ...(usage.prompt_tokens === undefined ? {} : { inputTokens: usage.prompt_tokens }),
            ...(usage.completion_tokens === undefined ? {} : { outputImageTokens: usage.completion_tokens }),
          },
        }),
  })
}

/**
 * Build the channel. Called by Peel with the decoded YAML block.
 *
 * @category constructors
 */
export const make = (
  config: Config,
  context: Channel.MakeContext,
): Effect.Effect<Channel.Channel, never, Scope.Scope> =>
  Effect.sync(() => {
    const client = ExampleClient.make({ baseUrl: config.baseUrl, apiKey: config.apiKey, channel: context.name })
    const secrets = [Redacted.value(config.apiKey)]
    const price = config.price ?? defaultPrice
    const capabilities: Channel.Capabilities = {
      models: config.models ?? defaultModels,
      sizes: ["1K"],
      aspectRatios: ["1:1"],
    }
    const refuse = (request: Channel.ChannelRequest): string | undefined => {
      if (!capabilities.models.includes(request.model)) return `does not serve model ${request.model}`
      if (request.size !== "1K") return `cannot make ${request.size} images (the proxy only makes 1K)`
      if (request.aspectRatio !== "1:1")
        return `cannot make aspect ratio ${request.aspectRatio} (the proxy only makes 1:1)`
      return undefined
    }
    const generate = Effect.fn("ExampleChannel.generate")(function* (
      request: Channel.ChannelRequest,
    ): Effect.fn.Return<Channel.ChannelImage, Errors.ChannelError> {
      // Contract v2: core has already refused what `refuse` rejects (once, while planning): no second check.
      const reply = yield* client.chatCompletions(toBody(request))
      return yield* Effect.fromResult(fromReply(context.name, reply, secrets, price))
    })
    return { name: context.name, plugin: pluginName, capabilities, price: () => price, refuse, generate }
  })
