/**
 * Placeholder images: the last resort of a fallback stage. A checked-in file, or a neutral grey PNG of
 * exactly the pixel size the plan asked for, generated here (no dependency: a PNG of one grey value is a
 * header, one deflated block of identical rows and an end marker).
 *
 * @since 0.2.0
 */
import { crc32, deflateSync } from "node:zlib"

const signature = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

const chunk = (type: string, data: Uint8Array): Buffer => {
  const header = Buffer.alloc(8)
  header.writeUInt32BE(data.length, 0)
  header.write(type, 4, "latin1")
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.concat([header.subarray(4), data])) >>> 0, 0)
  return Buffer.concat([header, data, crc])
}

const made = new Map<string, Uint8Array>()

/**
 * A grey (8-bit greyscale) PNG of `width` × `height` pixels, made once per size (compressing a 4K one
 * takes ~0.2 s, which must not block every request in flight each time).
 *
 * @category placeholders
 */
export const greyPng = (width: number, height: number, grey = 0xd0): Uint8Array => {
  const key = `${width}x${height}x${grey}`
  const known = made.get(key)
  if (known !== undefined) return known
  const png = makeGreyPng(width, height, grey)
  if (made.size > 64) made.clear()
  made.set(key, png)
  return png
}

const makeGreyPng = (width: number, height: number, grey: number): Uint8Array => {
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 8 // bit depth
  header[9] = 0 // greyscale
  const row = Buffer.alloc(width + 1, grey)
  row[0] = 0 // filter: none
  const raw = Buffer.alloc(row.length * height)
  for (let y = 0; y < height; y++) row.copy(raw, y * row.length)
  return Buffer.concat([
    signature,
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw, { level: 6 })),
    chunk("IEND", new Uint8Array(0)),
  ])
}
