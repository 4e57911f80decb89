/**
 * Which error each simulator fault must become, by wire family. A channel's conformance test uses the map
 * for its route by default, or passes its own (spread one of these and change what differs).
 *
 * @since 0.1.0
 */

/** The `_tag` of a channel error (`Errors.ChannelError`). @category errors */
export type ErrorTag =
  | "RateLimited"
  | "Unavailable"
  | "Timeout"
  | "Unauthorized"
  | "InsufficientCredits"
  | "Rejected"
  | "ContentBlocked"
  | "NoImage"
  | "MalformedResponse"
  | "Unsupported"

/**
 * What a fault must become: a tag, or a tag with more to check. `retryAfter: true` asks for a positive
 * `retryAfterMs` (the wire gave RetryInfo or Retry-After); `daily` is compared with the error's `daily`.
 *
 * @category errors
 */
export type ErrorExpectation =
  | ErrorTag
  | {
      readonly tag: ErrorTag
      readonly retryAfter?: boolean
      readonly daily?: boolean
      /** The HTTP status the error must carry. */
      readonly status?: number
    }

/** Fault kind (as scripted on the simulator) → expected error. @category errors */
export type ErrorMap = Readonly<Record<string, ErrorExpectation>>

/**
 * Gemini `generateContent` family (routes `gemini`, `proxy-gemini`, `vertex`, `vertex-express`).
 *
 * @category errors
 */
export const geminiErrors: ErrorMap = {
  "429": { tag: "RateLimited", retryAfter: true },
  "429-daily": { tag: "RateLimited", daily: true },
  "500": "Unavailable",
  "503": "Unavailable",
  "504": "Unavailable",
  "400": "Rejected",
  "401": "Unauthorized",
  "403": "Unauthorized",
  malformed: "MalformedResponse",
  html: "Unavailable",
  safety: "ContentBlocked",
  blocked: "ContentBlocked",
  "text-only": "NoImage",
  truncated: "MalformedResponse",
}

/**
 * OpenAI chat-completions family (routes `openrouter`, `proxy-chat`). `error-in-200` carries a 502-coded
 * error in the simulator, hence `Unavailable`.
 *
 * @category errors
 */
export const openAiErrors: ErrorMap = {
  "402": "InsufficientCredits",
  "429": { tag: "RateLimited", retryAfter: true },
  "500": "Unavailable",
  "502": "Unavailable",
  "503": "Unavailable",
  "400": "Rejected",
  "401": "Unauthorized",
  malformed: "MalformedResponse",
  "text-only": "NoImage",
  truncated: "MalformedResponse",
  "error-in-200": "Unavailable",
}

const geminiRoutes: ReadonlySet<string> = new Set([
  "gemini",
  "proxy-gemini",
  "vertex",
  "vertex-express",
  "gemini-batch",
])

/** The default map for a simulator route: Gemini wire or OpenAI wire. @category errors */
export const defaultErrors = (route: string): ErrorMap => (geminiRoutes.has(route) ? geminiErrors : openAiErrors)

/** The tag an expectation asks for. @category errors */
export const expectedTag = (expectation: ErrorExpectation): ErrorTag =>
  typeof expectation === "string" ? expectation : expectation.tag
