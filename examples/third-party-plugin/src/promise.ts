/**
 * The same channel as {@link ./index.ts}, written without Effect: `definePromisePlugin` from `@peel/contract`,
 * a plain config check, `fetch` with the attempt's `signal`, and errors thrown as Peel's error classes (or
 * `{ status, message }`, which core classifies by HTTP status). It passes the same conformance suite.
 * A pipeline loads it with `plugin: peel-channel-example/promise` or `plugin: ./path/to/src/promise.ts`.
 *
 * @since 0.3.0
 */
import { Channel, definePromisePlugin, Errors, Image } from "@peel/contract"
import * as Failures from "./internal/errors.ts"

/** A secret that never prints: JSON, `String` and `util.inspect` show `<redacted>`. @category config */
export class Secret {
  readonly #value: string
  constructor(value: string) {
    this.#value = value
  }
  reveal(): string {
    return this.#value
  }
  toJSON(): string {
    return "<redacted>"
  }
  toString(): string {
    return "<redacted>"
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "<redacted>"
  }
}

/** @category config */
export interface Config {
  readonly apiKey: Secret
  readonly baseUrl: string
  readonly models?: ReadonlyArray<string> | undefined
  readonly price?: number | undefined
}

const keys = new Set(["apiKey", "baseUrl", "models", "price"])

/** The YAML block, checked by hand: every problem at once, unknown keys refused. @category config */
export const config = (input: unknown): Config => {
  const block = (typeof input === "object" && input !== null ? input : {}) as Record<string, unknown>
  const problems: Array<string> = []
  for (const key of Object.keys(block)) if (!keys.has(key)) problems.push(`unknown key "${key}"`)
  if (typeof block.apiKey !== "string") problems.push("apiKey: a string is required")
  if (typeof block.baseUrl !== "string") problems.push("baseUrl: a string is required")
  if (block.models !== undefined && !(Array.isArray(block.models) && block.models.every((m) => typeof m === "string")))
    problems.push("models: a list of model ids")
  if (block.price !== undefined && !(typeof block.price === "number" && block.price >= 0))
    problems.push("price: a non-negative number")
  if (problems.length > 0) throw new Error(problems.join("; "))
  return {
    apiKey: new Secret(block.apiKey as string),
    baseUrl: (block.baseUrl as string).replace(/\/+$/, ""),
    ...(block.models === undefined ? {} : { models: block.models as Array<string> }),
    ...(block.price === undefined ? {} : { price: block.price as number }),
  }
}

/** The plugin. @category plugin */
export default definePromisePlugin<Config>({
  name: "example-promise",
  description: "Example, written with Promises: an OpenAI-compatible chat proxy answering 1K 1:1 data-URI images",
  config,
  make: (settings, context) => {
    const secret = settings.apiKey.reveal()
    const quote = (text: string) => Errors.describeBody(text, [secret])
    const price = settings.price ?? 0.05
    const capabilities: Channel.Capabilities = {
      models: settings.models ?? ["gemini-3-pro-image", "gemini-3-pro-image-preview", "gemini-2.5-flash-image"],
      sizes: ["1K"],
      aspectRatios: ["1:1"],
    }
    return {
      capabilities,
      price: () => price,
      refuse: (request) => Channel.supportCheck(capabilities, request),
      generate: async (request, { signal }) => {
        let response: Response
        try {
          response = await fetch(`${settings.baseUrl}/chat/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
            body: JSON.stringify({
              model: request.model,
              messages: [{ role: "user", content: request.prompt }],
              stream: false,
            }),
            signal,
          })
        } catch (cause) {
          throw new Errors.Unavailable({ channel: context.name, message: quote(`cannot reach the proxy: ${cause}`) })
        }
        const text = await response.text()
        const retryAfter = response.headers.get("retry-after") ?? undefined
        if (!response.ok)
          throw Failures.fromStatus({ channel: context.name, status: response.status, detail: quote(text), retryAfter })
        let completion: {
          choices?: Array<{ finish_reason?: string | null; message?: { content?: string | null } }>
          error?: { code?: unknown; message?: string }
        }
        try {
          completion = JSON.parse(text)
        } catch {
          throw Failures.malformed(context.name, `answer is not JSON: ${quote(text)}`)
        }
        if (completion.error !== undefined) {
          const code = Number(completion.error.code)
          throw Failures.fromStatus({
            channel: context.name,
            status: Number.isInteger(code) && code >= 400 ? code : 502,
            detail: `error inside a 200 answer: ${quote(completion.error.message ?? "")}`,
            retryAfter,
          })
        }
        const choice = completion.choices?.[0]
        if (choice === undefined) throw Failures.malformed(context.name, "answer has no choices")
        const content = choice.message?.content ?? ""
        const found = Image.findImageInText(content)
        if (found === undefined || found._tag === "Url")
          throw Failures.noImage(context.name, `answer has no inline image: ${quote(content)}`, choice.finish_reason)
        const bytes = Image.decodeBase64(found.base64)
        if (bytes === undefined) throw Failures.malformed(context.name, "image data is not valid base64")
        return { bytes, mimeType: found.mimeType, costUsd: price }
      },
    }
  },
})
