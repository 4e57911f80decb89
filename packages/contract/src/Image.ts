/**
 * Checking that bytes an upstream sent are really an image, and what size it is. Channels call
 * {@link decodeBase64Image} at their boundary so bad base64 or a non-image becomes `MalformedResponse`.
 *
 * @since 0.1.0
 */
import { imageSize } from "image-size"
import { type ChannelError, MalformedResponse } from "./Errors.ts"

/** @category images */
export interface ImageInfo {
  readonly mimeType: string
  readonly width: number
  readonly height: number
}

const mimeByType: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
}

/** The type and pixel size of an image, or `undefined` if the bytes are not a whole image we know. @category images */
export const inspectImage = (bytes: Uint8Array): ImageInfo | undefined => {
  if (bytes.length < 24) return undefined
  // The common answer, a plain PNG, is read here (signature, IHDR size, IEND at the end); anything else
  // goes through image-size's detection.
  if (isPlainPng(bytes))
    return hasPngEnd(bytes)
      ? { mimeType: "image/png", width: readUint32(bytes, 16), height: readUint32(bytes, 20) }
      : undefined
  try {
    const info = imageSize(bytes)
    const mimeType = info.type === undefined ? undefined : mimeByType[info.type]
    if (mimeType === undefined || info.width === undefined || info.height === undefined) return undefined
    if (mimeType === "image/png" && !hasPngEnd(bytes)) return undefined
    if (mimeType === "image/jpeg" && !(bytes[bytes.length - 2] === 0xff && bytes[bytes.length - 1] === 0xd9))
      return undefined
    return { mimeType, width: info.width, height: info.height }
  } catch {
    return undefined
  }
}

const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0, 0x49, 0x48, 0x44, 0x52]
const pngEnd = [0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]

/** The PNG signature, then the IHDR chunk first (its length bytes, 8–11, are not compared). */
const isPlainPng = (bytes: Uint8Array): boolean => {
  for (let index = 0; index < pngSignature.length; index++)
    if ((index < 8 || index >= 12) && bytes[index] !== pngSignature[index]) return false
  return true
}

const hasPngEnd = (bytes: Uint8Array): boolean => {
  const start = bytes.length - pngEnd.length
  for (let index = 0; index < pngEnd.length; index++) if (bytes[start + index] !== pngEnd[index]) return false
  return true
}

const readUint32 = (bytes: Uint8Array, offset: number): number =>
  ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0

const base64Pattern = /^[A-Za-z0-9+/_-]*={0,2}$/

/**
 * Strict base64 → image. Returns the bytes and what they are, or a reason they are not an image
 * (bad base64, truncated, not an image). Truncation is caught by checking the format's end marker.
 *
 * @category images
 */
export const decodeBase64Image = (
  data: string,
): { readonly bytes: Uint8Array; readonly info: ImageInfo } | { readonly problem: string } => {
  const compact = data.replace(/\s+/g, "")
  if (compact.length === 0) return { problem: "empty image data" }
  if (!base64Pattern.test(compact) || compact.length % 4 === 1) return { problem: "image data is not valid base64" }
  const bytes = new Uint8Array(Buffer.from(compact, "base64"))
  const info = inspectImage(bytes)
  if (info === undefined)
    return { problem: `image data (${bytes.length} bytes) is not a complete PNG, JPEG or WebP image` }
  return { bytes, info }
}

/**
 * Base64 text that is not a string: its ASCII bytes, as one array or in pieces (views of the chunks an
 * answer arrived in, as a transport that lifted it out of the JSON keeps it).
 *
 * @category images
 */
export type Base64Bytes = Uint8Array | ReadonlyArray<Uint8Array>

/**
 * Base64 → bytes without a copy or a pattern scan: Node's decoder skips characters outside the alphabet,
 * so a decoded length that disagrees with the text's length reveals bad base64. The bytes are not checked
 * for being an image here: core does that once per answer ({@link inspectImage}). Text given as bytes
 * ({@link Base64Bytes}) is decoded piece by piece, never joined into one string; when it is standard,
 * padded base64 it is remembered beside the decoded image ({@link base64TextOf}), so whoever sends the
 * image on as base64 can copy it instead of encoding again.
 *
 * @category images
 */
export const decodeBase64 = (data: string | Base64Bytes): Uint8Array | undefined => {
  if (typeof data !== "string") return decodeBase64Bytes(data instanceof Uint8Array ? [data] : data)
  let text = data
  if (/\s/.test(text.slice(0, 128)) || /\s/.test(text.slice(-128))) text = text.replace(/\s+/g, "")
  if (text.length === 0) return undefined
  // Node's base64 decoder takes the URL-safe alphabet too: one pass, no scan for "-" or "_" first.
  const bytes = Buffer.from(text, "base64")
  const expected = expectedLength(text.length, text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0)
  return bytes.length === expected ? bytes : undefined
}

/** The byte length `length` characters of base64 with `padding` `=` decode to; -1 if no text can. */
const expectedLength = (length: number, padding: number): number => {
  const significant = length - padding
  return significant % 4 === 1 ? -1 : Math.floor((significant * 3) / 4)
}

/** Pieces of at most this many characters go through one (young, short-lived) string each. */
const pieceCharacters = 65_536

const decodeBase64Bytes = (pieces: ReadonlyArray<Uint8Array>): Uint8Array | undefined => {
  const views = pieces.map((piece) => Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength))
  let length = 0
  for (const view of views) length += view.length
  const last = lastBytes(views, 2)
  // Whitespace at either end (a pretty-printed or line-wrapped answer) goes the string way.
  if (length === 0 || isWhitespace(last[1]) || isWhitespace(firstByte(views))) {
    const text = Buffer.concat(views).toString("latin1")
    return text.trim() === "" ? undefined : decodeBase64(text)
  }
  const padding = last[1] === 0x3d ? (last[0] === 0x3d ? 2 : 1) : 0
  const expected = expectedLength(length, padding)
  if (expected < 0) return undefined
  const bytes = Buffer.allocUnsafe(expected + 3)
  let written = 0
  // Up to 3 characters left over from one piece wait here for the next, so every string decoded is whole
  // groups of 4 (the last one may be short: the text's unpadded end).
  let pending = ""
  for (const view of views) {
    let from = 0
    if (pending !== "") {
      from = Math.min(view.length, 4 - pending.length)
      pending += view.toString("latin1", 0, from)
      if (pending.length < 4) continue
      written += bytes.write(pending, written, "base64")
      pending = ""
    }
    const whole = view.length - ((view.length - from) % 4)
    for (let start = from; start < whole; start += pieceCharacters)
      written += bytes.write(
        view.toString("latin1", start, Math.min(whole, start + pieceCharacters)),
        written,
        "base64",
      )
    pending = view.toString("latin1", whole, view.length)
  }
  if (pending !== "") written += bytes.write(pending, written, "base64")
  if (written !== expected) return undefined
  const decoded = bytes.subarray(0, expected)
  if (length % 4 === 0)
    if (views.every((view) => view.indexOf(0x2d) === -1 && view.indexOf(0x5f) === -1)) base64Texts.set(decoded, views)
  return decoded
}

const isWhitespace = (byte: number | undefined) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09

const firstByte = (views: ReadonlyArray<Buffer>): number | undefined => views.find((view) => view.length > 0)?.[0]

/** The last `count` bytes across the pieces (`undefined` where there are fewer). */
const lastBytes = (views: ReadonlyArray<Buffer>, count: number): Array<number | undefined> => {
  const found: Array<number | undefined> = []
  for (let index = views.length - 1; index >= 0 && found.length < count; index--)
    for (let at = views[index]!.length - 1; at >= 0 && found.length < count; at--) found.unshift(views[index]![at])
  while (found.length < count) found.unshift(undefined)
  return found
}

/** Decoded images → the base64 text (ASCII bytes, in pieces) they came from, while both live. */
const base64Texts = new WeakMap<Uint8Array, ReadonlyArray<Uint8Array>>()

/**
 * The standard, padded base64 text (ASCII bytes, in pieces) that `bytes` were decoded from by
 * {@link decodeBase64}, if they were decoded from bytes and are the same object; `undefined` otherwise
 * (encode them).
 *
 * @category images
 */
export const base64TextOf = (bytes: Uint8Array): ReadonlyArray<Uint8Array> | undefined => base64Texts.get(bytes)

/** An image found inside text: inline data, or a link to fetch. @category images */
export type TextImage =
  | { readonly _tag: "Data"; readonly mimeType: string; readonly base64: string }
  | { readonly _tag: "Url"; readonly url: string }

const markdownDataUri = /!\[[^\]]*\]\(\s*data:(image\/[A-Za-z0-9.+-]+);base64,([A-Za-z0-9+/=_\s-]+?)\s*\)/
const bareDataUri = /data:(image\/[A-Za-z0-9.+-]+);base64,([A-Za-z0-9+/=_-]+)/
const markdownUrl = /!\[[^\]]*\]\(\s*(https?:\/\/[^\s)]+)\s*\)/
const bareUrl = /https?:\/\/[^\s)"'<>]+/

/**
 * Find an image in a text answer, in the order proxies are known to use: a markdown data-URI
 * (`![image](data:image/png;base64,...)`), a bare data-URI, a markdown image link, a bare URL.
 *
 * @category images
 */
export const findImageInText = (text: string): TextImage | undefined => {
  const data = markdownDataUri.exec(text) ?? bareDataUri.exec(text)
  if (data !== null) return { _tag: "Data", mimeType: data[1]!, base64: data[2]!.replace(/\s+/g, "") }
  const link = markdownUrl.exec(text)
  if (link !== null) return { _tag: "Url", url: link[1]! }
  const url = bareUrl.exec(text)
  return url === null ? undefined : { _tag: "Url", url: url[0] }
}

/**
 * What a channel found in an upstream's answer: the image, a link to fetch it from, or the typed reason
 * there is none. Shared by every wire module.
 *
 * @category extraction
 */
export type Found =
  | { readonly _tag: "Image"; readonly bytes: Uint8Array; readonly mimeType: string }
  | { readonly _tag: "Url"; readonly url: string }
  | { readonly _tag: "Error"; readonly error: ChannelError }

/**
 * Base64 → {@link Found}: the bytes, or `MalformedResponse` when the text is not base64. Whether the bytes
 * are a whole image is checked once, by core, for every channel alike.
 *
 * @category extraction
 */
export const foundFromBase64 = (channel: string, base64: string | Base64Bytes, mimeType = "image/png"): Found => {
  const bytes = decodeBase64(base64)
  return bytes === undefined
    ? {
        _tag: "Error",
        error: new MalformedResponse({
          channel,
          message: isBlank(base64) ? "empty image data" : "image data is not valid base64",
        }),
      }
    : { _tag: "Image", bytes, mimeType }
}

const isBlank = (text: string | Base64Bytes): boolean =>
  (typeof text === "string"
    ? text
    : Buffer.concat(text instanceof Uint8Array ? [text] : text).toString("latin1")
  ).trim() === ""

/** The answer was not a JSON object at all. @category extraction */
export const notAnObject = (channel: string): Found => ({
  _tag: "Error",
  error: new MalformedResponse({ channel, message: "the answer is not a JSON object" }),
})

/**
 * Limits on reference images. 14 is the most Gemini 3 image models take; 7 MB each and 15 MB in all keep
 * an inline request (base64, +33%) under Google's 20 MB.
 *
 * @category images
 */
export const imageLimits = {
  maxImages: 14,
  maxImageBytes: 7 * 1024 * 1024,
  maxTotalBytes: 15 * 1024 * 1024,
  /** Types the Gemini image models take. */
  mimeTypes: ["image/png", "image/jpeg", "image/webp"] as ReadonlyArray<string>,
  /** How long a URL may take to download. */
  timeoutMillis: 30_000,
} as const
