/**
 * The one place this channel classifies failures. Calls to the Batch and Files APIs are Google's wire,
 * so a thrown SDK error goes to the shared Gemini classifier; a per-request error inside a finished job
 * (`{"error": {"code": 3, "message": ...}}`, a `google.rpc.Status` whose code is a gRPC code, not an HTTP
 * status) is mapped to the HTTP status it stands for and classified the same way.
 */
import { Errors } from "@peel/contract"
import { GeminiWire } from "@peel/gemini-wire"

export const classify = (channel: string, thrown: unknown, secret: string): Errors.ChannelError =>
  GeminiWire.classifyThrown(channel, thrown, [secret])

/** gRPC status code → the HTTP status Google maps it to (google.rpc.Code). */
const httpOfRpc: Readonly<Record<number, number>> = {
  1: 499, // CANCELLED
  2: 500, // UNKNOWN
  3: 400, // INVALID_ARGUMENT
  4: 504, // DEADLINE_EXCEEDED
  5: 404, // NOT_FOUND
  6: 409, // ALREADY_EXISTS
  7: 403, // PERMISSION_DENIED
  8: 429, // RESOURCE_EXHAUSTED
  9: 400, // FAILED_PRECONDITION
  10: 409, // ABORTED
  11: 400, // OUT_OF_RANGE
  12: 501, // UNIMPLEMENTED
  13: 500, // INTERNAL
  14: 503, // UNAVAILABLE
  15: 500, // DATA_LOSS
  16: 401, // UNAUTHENTICATED
}

/**
 * A per-request error inside a batch result. `code` is a gRPC code (3, 8, 13, ...) or, from some
 * upstreams, already an HTTP status; both are accepted.
 */
export const fromRequestError = (channel: string, error: unknown, secret: string): Errors.ChannelError => {
  const value = (typeof error === "object" && error !== null ? error : {}) as {
    code?: unknown
    message?: unknown
    status?: unknown
  }
  const code = typeof value.code === "number" ? value.code : 13
  const status = code >= 100 ? code : (httpOfRpc[code] ?? 500)
  if (status === 499) return new Errors.Unavailable({ channel, message: "the request was cancelled inside the batch" })
  return GeminiWire.classifyHttpError(
    channel,
    status,
    JSON.stringify({ error: { code: status, message: value.message ?? "", status: value.status ?? "" } }),
    [secret],
  )
}
