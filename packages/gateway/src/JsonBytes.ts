/**
 * JSON answers that carry images, written as bytes. An image answer is mostly one base64 string (2–3 MB for
 * a 2K–4K image): `JSON.stringify` would scan it for characters to escape and copy it into a second string,
 * and the server would then encode that string to UTF-8 — three passes and two large strings per image.
 * A {@link Base64} value instead stands in the body for the image's bytes: the small rest of the body is
 * stringified as usual, and the base64 goes into the answer as pieces of bytes (base64 never needs
 * escaping) — the upstream's own text when it is at hand, so nothing is encoded again. `JSON.stringify`
 * of a body holding `Base64` values still gives the same text (`toJSON`), so the answer's shape does not
 * depend on which path wrote it.
 *
 * @since 0.1.0
 */
import { Image } from "@peel/contract"

/** Input bytes per base64 piece: a multiple of 3, so pieces join without padding; 64 KB of text each. */
const pieceBytes = 49_152

/**
 * Bytes to be written as a base64 JSON string, after an optional ASCII `prefix` (`data:image/png;base64,`).
 * When the bytes were decoded from an upstream's standard base64 that is still at hand
 * (`Image.base64TextOf`), that text is copied as it is instead of being encoded again.
 *
 * @category models
 */
export class Base64 {
  readonly bytes: Buffer
  readonly prefix: string
  /** The base64 text of `bytes` as ASCII bytes, when the upstream's is known. */
  readonly text: ReadonlyArray<Uint8Array> | undefined
  constructor(bytes: Uint8Array, prefix = "") {
    this.bytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.prefix = prefix
    this.text = Image.base64TextOf(bytes)
  }
  toJSON(): string {
    if (this.text !== undefined) return this.prefix + Buffer.concat(this.text).toString("latin1")
    return this.prefix + this.bytes.toString("base64")
  }
}

/** What stands in the stringified skeleton for the n-th value (a character JSON escapes, so no real text has it). */
const marker = (index: number) => `\u0000peel:${index}\u0000`
const markerText = (index: number) => JSON.stringify(marker(index))

/** `value` with each {@link Base64} in it replaced by its marker (arrays and plain objects copied, the rest kept). */
const withMarkers = (value: unknown, values: Array<Base64>): unknown => {
  if (value instanceof Base64) {
    values.push(value)
    return marker(values.length - 1)
  }
  if (Array.isArray(value)) return value.map((item) => withMarkers(item, values))
  if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype) return value
  const copy: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) copy[key] = withMarkers(item, values)
  return copy
}

/**
 * `body` as UTF-8 JSON bytes, in pieces: the small JSON around each {@link Base64} value, and the value's
 * text — the upstream's own base64 as it arrived (views, no copy) when it is at hand, else encoded in
 * pieces of 64 KB. Written to a socket one after the other, an image answer needs no buffer of its size.
 *
 * @category encoding
 */
export const encodePieces = (body: unknown): Encoded => {
  const values: Array<Base64> = []
  // Base64 values are swapped for markers before stringifying: `JSON.stringify` calls `toJSON` before a
  // replacer sees a value, which would encode every image once more only to throw the text away.
  const skeleton = JSON.stringify(withMarkers(body, values))
  const pieces: Array<Uint8Array> = []
  let from = 0
  for (let index = 0; index < values.length; index++) {
    const text = markerText(index)
    const at = skeleton.indexOf(text, from)
    const value = values[index]!
    pieces.push(Buffer.from(`${skeleton.slice(from, at)}"${value.prefix}`, "utf8"))
    if (value.text !== undefined) pieces.push(...value.text)
    else
      for (let start = 0; start < value.bytes.length; start += pieceBytes)
        pieces.push(
          Buffer.from(value.bytes.toString("base64", start, Math.min(value.bytes.length, start + pieceBytes))),
        )
    from = at + text.length - 1
  }
  pieces.push(Buffer.from(values.length === 0 ? skeleton : skeleton.slice(from), "utf8"))
  let length = 0
  for (const piece of pieces) length += piece.length
  return { pieces, length }
}

/** An answer's bytes as pieces, and their total length. @category models */
export interface Encoded {
  readonly pieces: ReadonlyArray<Uint8Array>
  readonly length: number
}

/** The pieces as one buffer (the one piece itself when there is one). @category encoding */
export const join = ({ pieces, length }: Encoded): Buffer =>
  pieces.length === 1 ? Buffer.from(pieces[0]!.buffer, pieces[0]!.byteOffset, length) : Buffer.concat(pieces, length)

/**
 * `body` as UTF-8 JSON bytes in one buffer, each {@link Base64} value written once, straight into it.
 *
 * @category encoding
 */
export const encode = (body: unknown): Buffer => join(encodePieces(body))
