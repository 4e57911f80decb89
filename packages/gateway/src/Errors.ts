/**
 * What a gateway request can fail with, once, for every wire: each route renders these in its own wire's
 * shape and status (Gemini: `{error:{code,message,status}}`; OpenAI: `{error:{message,type,param,code}}`).
 * Messages are written for the caller and never hold a prompt, a key or an upstream body.
 *
 * | error                      | HTTP | Gemini status        | Retry-After |
 * | -------------------------- | ---- | -------------------- | ----------- |
 * | BadRequest                 | 400  | INVALID_ARGUMENT     |             |
 * | Unauthorized               | 401  | UNAUTHENTICATED      |             |
 * | Forbidden                  | 403  | PERMISSION_DENIED    |             |
 * | NotFound                   | 404  | NOT_FOUND            |             |
 * | MethodNotAllowed           | 405  | INVALID_ARGUMENT     |             |
 * | PayloadTooLarge            | 413  | INVALID_ARGUMENT     |             |
 * | KeyRateLimited             | 429  | RESOURCE_EXHAUSTED   | yes         |
 * | KeyBudgetExhausted         | 429  | RESOURCE_EXHAUSTED   | yes         |
 * | PipelineBudgetExhausted    | 429  | RESOURCE_EXHAUSTED   | yes         |
 * | SafetyBlocked              | the wire's own way (Gemini: 200 with `promptFeedback.blockReason`)  |
 * | Internal                   | 500  | INTERNAL             |             |
 * | Unavailable                | 503  | UNAVAILABLE          | yes         |
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/** The body is not what the route takes (not JSON, a wrong shape, a bad field): 400, nothing spent. @category errors */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", {
  message: Schema.String,
}) {}

/** No key, or an unknown or revoked one: 401. @category errors */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String,
}) {}

/** The key may not use this model or pipeline: 403. @category errors */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String,
}) {}

/** The key's own requests-per-minute limit: 429 with Retry-After. @category errors */
export class KeyRateLimited extends Schema.TaggedError<KeyRateLimited>()("KeyRateLimited", {
  retryAfterSeconds: Schema.Number,
  message: Schema.String,
}) {}

/** The key's budget for its window is spent (or reserved by requests in flight): 429 with Retry-After. @category errors */
export class KeyBudgetExhausted extends Schema.TaggedError<KeyBudgetExhausted>()("KeyBudgetExhausted", {
  retryAfterSeconds: Schema.Number,
  message: Schema.String,
}) {}

/** The pipeline's own budget stage refused the request (the operator's cap, not the key's): 429 with Retry-After. @category errors */
export class PipelineBudgetExhausted extends Schema.TaggedError<PipelineBudgetExhausted>()("PipelineBudgetExhausted", {
  retryAfterSeconds: Schema.Number,
  message: Schema.String,
}) {}

/** No such route or model: 404. @category errors */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  message: Schema.String,
}) {}

/** The route exists but not for this method: 405. @category errors */
export class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()("MethodNotAllowed", {
  message: Schema.String,
}) {}

/** The body is larger than {@link maxBodyBytes}: 413, nothing read past the limit, nothing spent. @category errors */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  message: Schema.String,
}) {}

/** The upstream blocked the prompt or the image for safety; `reason` is the upstream's (IMAGE_SAFETY, ...). @category errors */
export class SafetyBlocked extends Schema.TaggedError<SafetyBlocked>()("SafetyBlocked", {
  reason: Schema.String,
  message: Schema.String,
}) {}

/** Every path failed and the pipeline has no placeholder, or the gateway is draining: 503 with Retry-After. @category errors */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  retryAfterSeconds: Schema.Number,
  message: Schema.String,
}) {}

/** A bug in the gateway (a defect), answered without its details: 500. @category errors */
export class Internal extends Schema.TaggedError<Internal>()("Internal", {
  message: Schema.String,
}) {}

/** Everything a gateway request can fail with. @category errors */
export type GatewayError =
  | BadRequest
  | Unauthorized
  | Forbidden
  | KeyRateLimited
  | KeyBudgetExhausted
  | PipelineBudgetExhausted
  | NotFound
  | MethodNotAllowed
  | PayloadTooLarge
  | SafetyBlocked
  | Internal
  | Unavailable

/** The HTTP status of each error (SafetyBlocked: the status a wire uses when it renders the block as an error). @category errors */
export const httpStatus = (error: GatewayError): number => {
  switch (error._tag) {
    case "BadRequest":
      return 400
    case "Unauthorized":
      return 401
    case "Forbidden":
      return 403
    case "NotFound":
      return 404
    case "MethodNotAllowed":
      return 405
    case "PayloadTooLarge":
      return 413
    case "KeyRateLimited":
    case "KeyBudgetExhausted":
    case "PipelineBudgetExhausted":
      return 429
    case "SafetyBlocked":
      return 400
    case "Internal":
      return 500
    case "Unavailable":
      return 503
  }
}

/** Whole seconds for a Retry-After header, when the error carries one. @category errors */
export const retryAfterOf = (error: GatewayError): number | undefined =>
  "retryAfterSeconds" in error ? Math.max(1, Math.ceil(error.retryAfterSeconds)) : undefined

/** True for a gateway error, by `_tag`. @category errors */
export const isGatewayError = (value: unknown): value is GatewayError =>
  typeof value === "object" &&
  value !== null &&
  [
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "KeyRateLimited",
    "KeyBudgetExhausted",
    "PipelineBudgetExhausted",
    "NotFound",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "SafetyBlocked",
    "Internal",
    "Unavailable",
  ].includes((value as { _tag?: unknown })._tag as string)

/**
 * The largest request body, sized for 14 reference images: Peel takes at most 14 images of at most 15 MB
 * together (`Image.imageLimits`, Gemini's inline limit), which base64 makes 20 MB; 4 MiB more leaves room
 * for the prompt, the JSON and multipart framing. Larger bodies get 413 before anything is decoded.
 *
 * @category limits
 */
export const maxBodyBytes = 24 * 1024 * 1024
