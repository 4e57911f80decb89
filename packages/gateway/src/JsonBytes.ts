/**
 * JSON answers that carry images, written as bytes. An image answer is mostly one base64 string (2–3 MB for
 * a 2K–4K image): `JSON.stringify` would scan it for characters to escape and copy it into a second string,
 * and the server would then encode that string to UTF-8 — three passes and two large strings per image.
 * A {@link Base64} value instead stands in the body for the image's bytes: the small rest of the body is
 * stringified as usual, and the base64 is written straight into the answer's one buffer (base64 never needs
 * escaping). `JSON.stringify` of a body holding `Base64` values still gives the same text (`toJSON`), so
 * the answer's shape does not depend on which path wrote it.
 *
 * @since 0.1.0
 */

/** Bytes to be written as a base64 JSON string, after an optional ASCII `prefix` (`data:image/png;base64,`). @category models */
export class Base64 {
  readonly bytes: Uint8Array
  readonly prefix: string
  constructor(bytes: Uint8Array, prefix = "") {
    this.bytes = bytes
    this.prefix = prefix
  }
  /** The base64 text, without copying the bytes first. */
  encode(): string {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength).toString("base64")
  }
  toJSON(): string {
    return this.prefix + this.encode()
  }
}

/** What stands in the stringified skeleton for the n-th value (a character JSON escapes, so no real text has it). */
const marker = (index: number) => `\u0000peel:${index}\u0000`
const markerText = (index: number) => JSON.stringify(marker(index))

/**
 * `body` as UTF-8 JSON bytes, each {@link Base64} value written once, straight into the result.
 *
 * @category encoding
 */
export const encode = (body: unknown): Buffer => {
  const values: Array<Base64> = []
  const skeleton = JSON.stringify(body, function (this: Record<string, unknown>, key, value) {
    const original = this[key]
    if (original instanceof Base64) {
      values.push(original)
      return marker(values.length - 1)
    }
    return value
  })
  if (values.length === 0) return Buffer.from(skeleton, "utf8")
  const pieces: Array<string | Base64> = []
  let from = 0
  for (let index = 0; index < values.length; index++) {
    const text = markerText(index)
    const at = skeleton.indexOf(text, from)
    pieces.push(skeleton.slice(from, at), values[index]!)
    from = at + text.length
  }
  pieces.push(skeleton.slice(from))
  const encoded = pieces.map((piece) => (typeof piece === "string" ? piece : piece.prefix + piece.encode()))
  let length = 0
  for (let index = 0; index < encoded.length; index++)
    length += index % 2 === 0 ? Buffer.byteLength(encoded[index]!, "utf8") : encoded[index]!.length + 2
  const out = Buffer.allocUnsafe(length)
  let offset = 0
  for (let index = 0; index < encoded.length; index++) {
    if (index % 2 === 0) offset += out.write(encoded[index]!, offset, "utf8")
    else {
      out[offset++] = 0x22 // "
      offset += out.write(encoded[index]!, offset, "latin1")
      out[offset++] = 0x22
    }
  }
  return out
}
