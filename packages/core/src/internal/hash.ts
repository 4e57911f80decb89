import { hash } from "node:crypto"

/** Whitespace-normalised prompt: trimmed, runs of whitespace collapsed. */
export const normalizePrompt = (prompt: string): string => prompt.trim().replace(/\s+/g, " ")

/** SHA-256 (hex) of the canonical request: normalised prompt, model, size, aspect ratio. */
export const canonicalHash = (request: {
  readonly prompt: string
  readonly model: string
  readonly size: string
  readonly aspectRatio: string
}): string =>
  hash("sha256", JSON.stringify([normalizePrompt(request.prompt), request.model, request.size, request.aspectRatio]))

/** SHA-256 (hex) of any JSON-able value. */
export const hashOf = (value: unknown): string => hash("sha256", JSON.stringify(value))
