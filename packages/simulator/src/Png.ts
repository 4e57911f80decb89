/**
 * Real PNG images of an exact pixel size, deterministic per colour, encoded with node:zlib (filter 0,
 * deflate level 1). Rows are identical within a band, so even 6336×2688 compresses to a few hundred KB
 * and encodes in tens of milliseconds; encoded images are cached by (width, height, colour, format).
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { deflateSync } from "node:zlib"

const crcTable = Array.from({ length: 256 }, (_, index) => {
  let value = index
  for (let bit = 0; bit < 8; bit++) value = value & 1 ? 0xedb88320 ^ (value >>> 1) : value >>> 1
  return value >>> 0
})

const crc32 = (bytes: Uint8Array): number => {
  let crc = 0xffffffff
  for (const byte of bytes) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

const chunk = (type: string, data: Uint8Array): Buffer => {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(type, "ascii"), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([length, body, crc])
}

/** A colour from any text (prompt, request id): the same text, the same colour. */
export const colourOf = (text: string): readonly [number, number, number] => {
  const digest = createHash("sha256").update(text).digest()
  // A small palette keeps the cache small while still telling images apart.
  const index = digest[0]! % 12
  const hue = (index * 30) % 360
  const [r, g, b] = hslToRgb(hue / 360, 0.55, 0.55)
  return [r, g, b]
}

const hslToRgb = (h: number, s: number, l: number): [number, number, number] => {
  const q = l < 0.5 ? l * (1 + s) : l + s - l * s
  const p = 2 * l - q
  const channel = (t0: number) => {
    let t = t0
    if (t < 0) t += 1
    if (t > 1) t -= 1
    if (t < 1 / 6) return p + (q - p) * 6 * t
    if (t < 1 / 2) return q
    if (t < 2 / 3) return p + (q - p) * (2 / 3 - t) * 6
    return p
  }
  return [Math.round(channel(h + 1 / 3) * 255), Math.round(channel(h) * 255), Math.round(channel(h - 1 / 3) * 255)]
}

const cache = new Map<string, Buffer>()

/** Encode an RGB PNG: a solid colour with a lighter band across the middle third. */
export const png = (width: number, height: number, colour: readonly [number, number, number]): Buffer => {
  const key = `png:${width}x${height}:${colour.join(",")}`
  const cached = cache.get(key)
  if (cached !== undefined) return cached
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 8 // bit depth
  header[9] = 2 // colour type RGB
  const rowLength = width * 3 + 1
  const makeRow = (rgb: readonly [number, number, number]) => {
    const row = Buffer.alloc(rowLength)
    for (let x = 0; x < width; x++) {
      row[1 + x * 3] = rgb[0]
      row[2 + x * 3] = rgb[1]
      row[3 + x * 3] = rgb[2]
    }
    return row
  }
  const plain = makeRow(colour)
  const band = makeRow([Math.min(255, colour[0] + 60), Math.min(255, colour[1] + 60), Math.min(255, colour[2] + 60)])
  const raw = Buffer.alloc(rowLength * height)
  for (let y = 0; y < height; y++) (y > height / 3 && y < (2 * height) / 3 ? band : plain).copy(raw, y * rowLength)
  const encoded = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw, { level: 1 })),
    chunk("IEND", new Uint8Array(0)),
  ])
  cache.set(key, encoded)
  return encoded
}

/**
 * A baseline JPEG of the exact size: SOI, a minimal SOF0 header carrying width and height, and EOI
 * around a tiny scan. Enough for any size sniffer; used when a test asks for `image/jpeg`.
 */
export const jpeg = (width: number, height: number): Buffer => {
  const key = `jpeg:${width}x${height}`
  const cached = cache.get(key)
  if (cached !== undefined) return cached
  const sof = Buffer.from([
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    0x03,
    0x01,
    0x22,
    0x00,
    0x02,
    0x11,
    0x01,
    0x03,
    0x11,
    0x01,
  ])
  const encoded = Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    Buffer.from([
      0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
    ]),
    sof,
    Buffer.from([0xff, 0xd9]),
  ])
  cache.set(key, encoded)
  return encoded
}

const paddedCache = new WeakMap<Buffer, Map<number, Buffer>>()

/**
 * The same PNG grown to at least `minimumBytes` with a `tEXt` comment chunk before `IEND` (pixels and
 * dimensions unchanged), for benchmarks that need answers the size of a real model's (1–3 MB per 2K–4K
 * image, where these flat images are a few hundred KB). Cached; `bytes` itself when already that large.
 */
export const padded = (bytes: Buffer, minimumBytes: number): Buffer => {
  const missing = minimumBytes - bytes.length
  if (missing <= 0) return bytes
  let bySize = paddedCache.get(bytes)
  const cached = bySize?.get(minimumBytes)
  if (cached !== undefined) return cached
  const keyword = Buffer.from("Comment\0", "latin1")
  const fillLength = Math.max(1, missing - 12 - keyword.length)
  const fill = Buffer.alloc(fillLength)
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  let state = 0x2545f491
  for (let index = 0; index < fillLength; index++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    fill[index] = alphabet.charCodeAt((state >>> 16) % alphabet.length)
  }
  const end = bytes.length - 12 // IEND: length, type, CRC
  const grown = Buffer.concat([
    bytes.subarray(0, end),
    chunk("tEXt", Buffer.concat([keyword, fill])),
    bytes.subarray(end),
  ])
  if (bySize === undefined) {
    bySize = new Map()
    paddedCache.set(bytes, bySize)
  }
  bySize.set(minimumBytes, grown)
  return grown
}

const base64Cache = new WeakMap<Buffer, string>()

/** Base64 of a (cached) encoded image, itself cached: 4K answers never re-encode. */
export const base64Of = (bytes: Buffer): string => {
  const cached = base64Cache.get(bytes)
  if (cached !== undefined) return cached
  const encoded = bytes.toString("base64")
  base64Cache.set(bytes, encoded)
  return encoded
}
