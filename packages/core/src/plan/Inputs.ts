/**
 * What a request brings besides its prompt, loaded and checked while planning — before any call, so a bad
 * input costs nothing: reference images ({@link loadImages}: a path, an `http(s)` URL, a `data:` URI,
 * base64 with a MIME type, or bytes; count, size and type by content sniffing) and per-channel provider
 * options ({@link checkProviderOptions}: each checked by its channel's own Schema).
 *
 * @since 0.3.0
 */
import { createHash } from "node:crypto"
import { resolve } from "node:path"
import type { Channel, ReferenceImage } from "@peel/contract/Channel"
import { InvalidRequest } from "@peel/contract/Errors"
import { imageLimits, inspectImage } from "@peel/contract/Image"
import { flattenIssues } from "@peel/contract/Issues"
import type { ImageInput, ImageRequest } from "@peel/contract/Request"
import { Effect, Result, Schema } from "effect"
import * as Files from "../internal/Files.ts"
import { describeUrl, download, type NetworkOptions } from "./Download.ts"

/** @deprecated moved to `Image.imageLimits` in `@peel/contract`; kept here for one release. @category images */
export { imageLimits }

/** @category images */
export interface LoadOptions {
  /** Folder relative paths are resolved against; the working directory by default. */
  readonly baseDir?: string | undefined
  /** The pipeline's `network:` block: hosts allowed although not public, download time limit, redirects. */
  readonly network?: NetworkOptions | undefined
}

const megabytes = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`

/** How an input is named in messages: its path or URL, never its data. */
const describe = (input: ImageInput): string => {
  if (typeof input === "string")
    return input.startsWith("data:") ? "data: URI" : /^https?:\/\//i.test(input) ? describeUrl(input) : input
  if ("path" in input) return input.path
  if ("url" in input) return describeUrl(input.url)
  return "data" in input ? "base64 data" : "bytes"
}

const dataUri = /^data:([^;,]+)?(;base64)?,(.*)$/s

/** Base64 → bytes, strictly (bad characters or a wrong length are errors). */
const fromBase64 = (text: string): Uint8Array | string => {
  const compact = text.replace(/\s+/g, "")
  if (compact.length === 0) return "empty base64 data"
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(compact) || compact.length % 4 === 1) return "not valid base64"
  return new Uint8Array(Buffer.from(compact, compact.includes("-") || compact.includes("_") ? "base64url" : "base64"))
}

const bytesOf = (input: ImageInput, options: LoadOptions): Effect.Effect<Uint8Array, string> => {
  if (typeof input === "string") {
    if (input.startsWith("data:")) {
      const match = dataUri.exec(input)
      if (match === null || match[2] === undefined)
        return Effect.fail("a data: URI must be base64 (data:image/png;base64,...)")
      const bytes = fromBase64(match[3] ?? "")
      return typeof bytes === "string" ? Effect.fail(bytes) : Effect.succeed(bytes)
    }
    if (/^https?:\/\//i.test(input))
      return download(input, { maxBytes: imageLimits.maxImageBytes, network: options.network })
    return bytesOf({ path: input }, options)
  }
  if ("bytes" in input) return Effect.succeed(input.bytes)
  if ("data" in input) {
    const bytes = fromBase64(input.data)
    return typeof bytes === "string" ? Effect.fail(bytes) : Effect.succeed(bytes)
  }
  if ("url" in input) return download(input.url, { maxBytes: imageLimits.maxImageBytes, network: options.network })
  const path = resolve(
    options.baseDir ?? process.cwd(),
    input.path.startsWith("file://") ? new URL(input.path).pathname : input.path,
  )
  return Files.readBytes(path).pipe(
    Effect.provide(Files.layerNode),
    Effect.map((bytes) => new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
    Effect.mapError((error) => {
      const code = Files.errorCode(error)
      return code === "ENOENT"
        ? `cannot read ${path}: no such file`
        : code === "EISDIR"
          ? `cannot read ${path}: it is a folder`
          : code === "EACCES"
            ? `cannot read ${path}: permission denied`
            : `cannot read ${path}: ${Files.reasonOf(error)}`
    }),
  )
}

/**
 * Load and check a request's reference images: at most {@link imageLimits}.maxImages, each readable, at
 * most `maxImageBytes`, a whole PNG, JPEG or WebP by its content (a declared MIME type is not trusted),
 * `maxTotalBytes` in all. Every problem is an `InvalidRequest` naming the image; nothing is called.
 *
 * @category images
 */
export const loadImages = (
  request: ImageRequest,
  id: string,
  options: LoadOptions = {},
): Effect.Effect<ReadonlyArray<ReferenceImage>, InvalidRequest> => {
  const inputs = request.images ?? []
  if (inputs.length === 0) return Effect.succeed([])
  if (inputs.length > imageLimits.maxImages)
    return Effect.fail(
      new InvalidRequest({
        message: `${id}: ${inputs.length} reference images; at most ${imageLimits.maxImages} are accepted`,
      }),
    )
  return Effect.forEach(
    inputs,
    (input, index) =>
      bytesOf(input, options).pipe(
        Effect.flatMap((bytes): Effect.Effect<ReferenceImage, string> => {
          if (bytes.length > imageLimits.maxImageBytes)
            return Effect.fail(`is ${megabytes(bytes.length)}; at most ${megabytes(imageLimits.maxImageBytes)} each`)
          const info = inspectImage(bytes)
          if (info === undefined)
            return Effect.fail(`is not a complete PNG, JPEG or WebP image (${bytes.length} bytes)`)
          if (!imageLimits.mimeTypes.includes(info.mimeType))
            return Effect.fail(`is ${info.mimeType}; the models take ${imageLimits.mimeTypes.join(", ")}`)
          return Effect.succeed({ bytes, mimeType: info.mimeType })
        }),
        Effect.mapError(
          (problem) => new InvalidRequest({ message: `${id}: images[${index}] (${describe(input)}): ${problem}` }),
        ),
      ),
    { concurrency: 4 },
  ).pipe(
    Effect.flatMap((images) => {
      const total = images.reduce((sum, image) => sum + image.bytes.length, 0)
      return total > imageLimits.maxTotalBytes
        ? Effect.fail(
            new InvalidRequest({
              message: `${id}: reference images total ${megabytes(total)}; at most ${megabytes(imageLimits.maxTotalBytes)} in all`,
            }),
          )
        : Effect.succeed(images)
    }),
  )
}

/** SHA-256 (hex) of an image's bytes: how a reference image enters cache keys. @category images */
export const imageHash = (image: ReferenceImage): string => createHash("sha256").update(image.bytes).digest("hex")

const strict = { errors: "all", onExcessProperty: "error" } as const

/**
 * Check a request's `providerOptions` against the pipeline's channels: every key names a channel or a
 * plugin, and each channel it reaches takes provider options and accepts these by its own Schema.
 *
 * @category options
 */
export const checkProviderOptions = (
  request: ImageRequest,
  id: string,
  channels: ReadonlyMap<string, Channel>,
): InvalidRequest | undefined => {
  const all = request.providerOptions
  if (all === undefined) return undefined
  const problems: Array<string> = []
  for (const [key, options] of Object.entries(all)) {
    const reached = [...channels.values()].filter((channel) => channel.name === key || channel.plugin === key)
    if (reached.length === 0) {
      problems.push(
        `providerOptions.${key}: no channel or plugin of that name in this pipeline (channels: ${[...channels.values()].map((channel) => `${channel.name} (${channel.plugin})`).join(", ")})`,
      )
      continue
    }
    for (const channel of reached) {
      if (channel.providerOptions === undefined) {
        problems.push(`providerOptions.${key}: channel ${channel.name} (${channel.plugin}) takes no provider options`)
        continue
      }
      const decoded = Schema.decodeUnknownResult(channel.providerOptions)(options, strict)
      if (Result.isFailure(decoded))
        for (const issue of flattenIssues(decoded.failure))
          problems.push(
            `providerOptions.${key}${issue.path.length === 0 ? "" : `.${issue.path.join(".")}`}: ${issue.message} (channel ${channel.name})`,
          )
    }
  }
  return problems.length === 0 ? undefined : new InvalidRequest({ message: `${id}: ${problems.join("; ")}` })
}
