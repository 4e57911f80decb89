/**
 * The OpenAI-shaped answers, built from what the runs made: the Images API's `{ created, data: [{ b64_json |
 * url }], size, output_format, usage }`, chat completions with OpenRouter's `message.images[].image_url.url`
 * data URIs (and `usage.cost` in USD), and `GET /v1/models`' list. Pure functions of their inputs: the
 * routes pass the time (`created`) and the links.
 *
 * @since 0.5.0
 */
import { type Attempt, Catalog, Image } from "@peel/contract"
import * as JsonBytes from "../JsonBytes.ts"
import * as Sizes from "./Sizes.ts"

/** One image a run made. @category models */
export interface MadeImage {
  readonly bytes: Uint8Array
  readonly mimeType: string
}

/** What one run made, as far as the OpenAI answers need it. @category models */
export interface Made {
  readonly requestId: string
  readonly images: ReadonlyArray<MadeImage>
  readonly text?: string | undefined
  readonly model: string
  readonly usage?: Attempt.Usage | undefined
  readonly costUsd: number
}

/**
 * A `data:MIME;base64,…` URI of an image, as a `JsonBytes.Base64`: `Http.json` writes its base64 straight
 * into the answer's bytes (no `JSON.stringify` pass over megabytes).
 *
 * @category encoding
 */
export const dataUri = (image: MadeImage): JsonBytes.Base64 =>
  new JsonBytes.Base64(image.bytes, `data:${image.mimeType};base64,`)

/** The Images API's `output_format` for a MIME type (`image/jpeg` → `jpeg`). @category encoding */
export const formatOf = (mimeType: string): string => mimeType.replace(/^image\//, "")

const sum = (values: ReadonlyArray<number | undefined>): number =>
  values.reduce<number>((total, value) => total + (value ?? 0), 0)

const outputTokens = (usage: Attempt.Usage | undefined): number =>
  sum([usage?.outputImageTokens, usage?.outputTextTokens, usage?.thoughtTokens])

/** One `data[]` entry: the bytes inline, or a link the gateway serves. @category models */
export type ImageDatum = { readonly b64_json: JsonBytes.Base64 } | { readonly url: string }

/**
 * `POST /v1/images/generations` and `/edits` answer. `size` and `output_format` describe the first image
 * as made (its real pixel size and format, which the caller's `size`/`output_format` only asked for).
 *
 * @category builders
 */
export const images = (input: {
  readonly created: number
  readonly data: ReadonlyArray<ImageDatum>
  readonly made: ReadonlyArray<Made>
}) => {
  const first = input.made.find((made) => made.images.length > 0)?.images[0]
  const info = first === undefined ? undefined : Image.inspectImage(first.bytes)
  const inputTokens = sum(input.made.map((made) => made.usage?.inputTokens))
  const output = sum(input.made.map((made) => outputTokens(made.usage)))
  return {
    created: input.created,
    data: input.data,
    ...(info === undefined ? {} : { size: Sizes.describe(info.width, info.height) }),
    ...(first === undefined ? {} : { output_format: formatOf(first.mimeType) }),
    background: "opaque",
    usage: { input_tokens: inputTokens, output_tokens: output, total_tokens: inputTokens + output },
  }
}

/**
 * `POST /v1/chat/completions` answer: one choice per run, each with the model's text as `content` and its
 * image(s) as `message.images` data URIs (OpenRouter's shape); a run the upstream blocked for safety is a
 * choice with `finish_reason: "content_filter"`, no image and the reason as `content` (OpenAI's way of
 * reporting a filtered completion).
 *
 * @category builders
 */
export const chatCompletion = (input: {
  readonly id: string
  readonly created: number
  readonly model: string
  readonly choices: ReadonlyArray<Made | { readonly _tag: "Blocked"; readonly reason: string }>
}) => {
  const made = input.choices.filter((choice): choice is Made => !("_tag" in choice))
  const promptTokens = sum(made.map((one) => one.usage?.inputTokens))
  const completionTokens = sum(made.map((one) => outputTokens(one.usage)))
  return {
    id: input.id,
    object: "chat.completion",
    created: input.created,
    model: input.model,
    choices: input.choices.map((choice, index) =>
      "_tag" in choice
        ? {
            index,
            finish_reason: "content_filter",
            native_finish_reason: choice.reason,
            message: {
              role: "assistant",
              content: `The upstream blocked this image (${choice.reason}).`,
              refusal: null,
            },
          }
        : {
            index,
            finish_reason: "stop",
            message: {
              role: "assistant",
              content: choice.text ?? "",
              refusal: null,
              images: choice.images.map((image) => ({ type: "image_url", image_url: { url: dataUri(image) } })),
            },
          },
    ),
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      completion_tokens_details: {
        reasoning_tokens: sum(made.map((one) => one.usage?.thoughtTokens)),
        image_tokens: sum(made.map((one) => one.usage?.outputImageTokens)),
      },
      cost: sum(made.map((one) => one.costUsd)),
    },
  }
}

/**
 * `GET /v1/models`: the catalog's image models (current and deprecated ids, not retired ones), each with
 * `owned_by: "google"`. `created` is 0: the catalog does not record release times.
 *
 * @category builders
 */
export const models = (ids: ReadonlyArray<string> = listedModels()) => ({
  object: "list",
  data: ids.map((id) => ({ id, object: "model", created: 0, owned_by: "google" })),
})

/** The ids `GET /v1/models` lists by default. @category builders */
export const listedModels = (): ReadonlyArray<string> =>
  Object.values(Catalog.models)
    .filter((model) => model.status !== "retired")
    .map((model) => model.id)

/**
 * A chat completion as server-sent events (`stream: true`): one `chat.completion.chunk` per choice whose
 * `delta` holds the whole message (text and `images`, as OpenRouter streams images), a last chunk with the
 * finish reasons and `usage`, then `data: [DONE]`. Images are made whole, so nothing arrives sooner by
 * splitting them.
 *
 * @category builders
 */
export const chatCompletionEvents = (completion: ReturnType<typeof chatCompletion>): Uint8Array => {
  const chunk = (choices: ReadonlyArray<unknown>, usage?: unknown) => [
    Buffer.from("data: "),
    JsonBytes.encode({
      id: completion.id,
      object: "chat.completion.chunk",
      created: completion.created,
      model: completion.model,
      choices,
      ...(usage === undefined ? {} : { usage }),
    }),
    Buffer.from("\n\n"),
  ]
  const deltas = completion.choices.flatMap((choice) =>
    chunk([{ index: choice.index, delta: choice.message, finish_reason: null }]),
  )
  const finish = chunk(
    completion.choices.map((choice) => ({ index: choice.index, delta: {}, finish_reason: choice.finish_reason })),
    completion.usage,
  )
  return Buffer.concat([...deltas, ...finish, Buffer.from("data: [DONE]\n\n")])
}
