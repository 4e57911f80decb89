/**
 * Every failure of the example channel is classified here, and only here: HTTP status (or the code of an
 * error inside a 200 body) → Peel's error taxonomy, `Retry-After` → `retryAfterMs`. Upstream bodies are
 * quoted with `Errors.describeBody` so base64 and the key never reach a message.
 *
 * @since 0.1.0
 */
import { Errors } from "@peel/contract"

/** Longest `Retry-After` taken seriously; anything above is ignored as absurd. */
const maxRetryAfterMs = 60 * 60 * 1000

/** `Retry-After` in seconds → milliseconds; HTTP dates and absurd values are ignored. */
export const retryAfterMillis = (header: string | undefined): number | undefined => {
  if (header === undefined || !/^\d+(\.\d+)?$/.test(header.trim())) return undefined
  const millis = Math.round(Number(header.trim()) * 1000)
  return millis > 0 && millis <= maxRetryAfterMs ? millis : undefined
}

/** What failed, as the wire told it. */
export interface Failure {
  readonly channel: string
  readonly status: number
  /** Already safe to show (quoted with `describeBody`). */
  readonly detail: string
  readonly retryAfter?: string | undefined
}

/** HTTP status (or an in-body error code) → the error class that decides retry and failover. */
export const fromStatus = (failure: Failure): Errors.ChannelError => {
  const { channel, status, detail } = failure
  const fields = { channel, status, message: `HTTP ${status}: ${detail}` }
  const retryAfterMs = retryAfterMillis(failure.retryAfter)
  if (status === 429)
    return new Errors.RateLimited({ ...fields, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) })
  if (status === 401 || status === 403) return new Errors.Unauthorized(fields)
  if (status === 402) return new Errors.InsufficientCredits(fields)
  if (status === 408) return new Errors.Timeout(fields)
  if (status === 400 || status === 404 || status === 413 || status === 422) return new Errors.Rejected(fields)
  return new Errors.Unavailable({ ...fields, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) })
}

/** An answer that is not what a chat completion should be. */
export const malformed = (channel: string, message: string): Errors.MalformedResponse =>
  new Errors.MalformedResponse({ channel, message })

/** A chat completion that carries no image. */
export const noImage = (channel: string, message: string, finishReason?: string | null): Errors.ChannelError =>
  finishReason === "content_filter"
    ? new Errors.ContentBlocked({ channel, message, reason: finishReason })
    : new Errors.NoImage({ channel, message, ...(finishReason == null ? {} : { finishReason }) })
