/**
 * One HTTP exchange as the route handlers see it, and the answer they give back. Route modules are pure
 * functions from an exchange (and a fault) to an {@link Answer}; the server does the I/O.
 *
 * @since 0.1.0
 */
import { Catalog } from "@peel/contract"
import type { FaultKind, RouteName } from "./Faults.ts"

export interface Exchange {
  readonly route: RouteName
  readonly method: string
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  readonly headers: Readonly<Record<string, string>>
  readonly body: unknown
  readonly rawBody: Buffer
  /** The credential the client sent (API key or bearer token), if any. */
  readonly credential: string | undefined
}

export interface Answer {
  readonly status: number
  readonly contentType?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body: string | Buffer
  /** Never answer; wait until the client goes away. */
  readonly hang?: boolean
  /** Extra delay before answering, in unscaled milliseconds. */
  readonly delayMillis?: number
}

/**
 * Why the model cannot make this size and aspect ratio (as Google would answer, with a 400), or
 * `undefined`. Models that ignore `imageSize` (2.5 Flash) take any size and make their one size.
 */
export const unmakeable = (model: string, size: string, aspectRatio: string): string | undefined => {
  const info = Catalog.findModel(model)
  if (info === undefined) return undefined
  if (!(info.aspectRatios as ReadonlyArray<string>).includes(aspectRatio))
    return `aspect ratio ${aspectRatio} is not supported by ${model}`
  if (info.acceptsImageSize && !(info.sizes as ReadonlyArray<string>).includes(size))
    return `image size ${size} is not supported by ${model}: use ${info.sizes.join(", ")}`
  return undefined
}

/** What a generation call asked for, parsed from the route's own request shape. */
export interface ImageAsk {
  readonly model: string
  readonly size: Catalog.Size
  readonly aspectRatio: string
  readonly prompt: string
  /** Reference images sent with the prompt (billed as input image tokens). */
  readonly images?: number
  readonly seed?: number
  /** Only the image was asked for (Gemini `responseModalities: ["IMAGE"]`, OpenAI-style `modalities: ["image"]`). */
  readonly imageOnly?: boolean
}

/** An inline reference image the simulator cannot take, as Google would say it; `undefined` when fine. */
export const badInlineImage = (mimeType: unknown, data: unknown): string | undefined => {
  if (
    typeof mimeType !== "string" ||
    !["image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"].includes(mimeType)
  )
    return `Unsupported MIME type: ${String(mimeType)}`
  if (typeof data !== "string" || data.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(data))
    return "Invalid value at 'contents[0].parts[1].inline_data.data': Base64 decoding failed"
  return undefined
}

export const json = (status: number, value: unknown, headers: Record<string, string> = {}): Answer => ({
  status,
  contentType: "application/json; charset=utf-8",
  headers,
  body: JSON.stringify(value),
})

export const htmlErrorPage = (): Answer => ({
  status: 502,
  contentType: "text/html; charset=utf-8",
  body: "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>The server encountered a temporary error.</p></body></html>",
})

export const malformedJson = (): Answer => ({
  status: 200,
  contentType: "application/json; charset=utf-8",
  body: '{"candidates": [{"content": {"parts": [{"text": "Here is',
})

/** Faults every route renders the same way. */
export const commonFault = (fault: FaultKind): Answer | undefined => {
  switch (fault) {
    case "hang":
      return { status: 200, body: "", hang: true }
    case "html":
      return htmlErrorPage()
    case "malformed":
      return malformedJson()
    default:
      return undefined
  }
}
