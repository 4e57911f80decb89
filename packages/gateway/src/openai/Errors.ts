/**
 * Gateway errors in OpenAI's shape, `{ "error": { "message", "type", "param", "code" } }`, with the status
 * the `openai` SDKs turn into their typed errors:
 *
 * | error                   | status | type                    | code                       | SDK error              |
 * | ----------------------- | ------ | ----------------------- | -------------------------- | ---------------------- |
 * | BadRequest              | 400    | invalid_request_error   | invalid_value (or null)    | BadRequestError        |
 * | SafetyBlocked           | 400    | invalid_request_error   | content_policy_violation   | BadRequestError        |
 * | Unauthorized            | 401    | invalid_request_error   | invalid_api_key            | AuthenticationError    |
 * | Forbidden               | 403    | permission_error        | model_not_allowed          | PermissionDeniedError  |
 * | NotFound                | 404    | invalid_request_error   | model_not_found / not_found| NotFoundError          |
 * | MethodNotAllowed        | 405    | invalid_request_error   | method_not_allowed         | APIError (405)         |
 * | Internal                | 500    | server_error            | internal_error             | InternalServerError    |
 * | PayloadTooLarge         | 413    | invalid_request_error   | request_too_large          | APIError (413)         |
 * | KeyRateLimited          | 429    | requests                | rate_limit_exceeded        | RateLimitError         |
 * | KeyBudgetExhausted      | 429    | insufficient_quota      | insufficient_quota         | RateLimitError         |
 * | PipelineBudgetExhausted | 429    | insufficient_quota      | pipeline_budget_exhausted  | RateLimitError         |
 * | Unavailable             | 503    | server_error            | service_unavailable        | InternalServerError    |
 *
 * A safety block is a 400 `content_policy_violation` on the Images API (what OpenAI answers when its own
 * safety system rejects an image request); chat completions report it OpenAI's chat way instead, a 200
 * choice with `finish_reason: "content_filter"` (see `Responses.chatCompletion`).
 *
 * 429 and 503 carry `Retry-After` (whole seconds). The `openai` SDKs retry 429 and 5xx on their own
 * (twice by default) and honour `Retry-After` only up to 60 s: when the wait is longer (a budget window
 * that reopens in an hour) the answer also says `x-should-retry: false`, so the SDK raises at once
 * instead of retrying into the same refusal.
 *
 * @since 0.5.0
 */
import { type GatewayError, httpStatus, retryAfterOf } from "../Errors.ts"
import * as Http from "../Http.ts"
import type { Refusal } from "./Requests.ts"

/** An OpenAI error answer: status, headers and body. @category models */
export interface Rendered {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: {
    readonly error: {
      readonly message: string
      readonly type: string
      readonly param: string | null
      readonly code: string | null
    }
  }
}

/** Longest Retry-After the `openai` SDKs wait for before retrying on their own. */
const sdkRetryCeilingSeconds = 60

const typeAndCode = (error: GatewayError): readonly [type: string, code: string | null] => {
  switch (error._tag) {
    case "BadRequest":
      return ["invalid_request_error", "invalid_value"]
    case "SafetyBlocked":
      return ["invalid_request_error", "content_policy_violation"]
    case "Unauthorized":
      return ["invalid_request_error", "invalid_api_key"]
    case "Forbidden":
      return ["permission_error", "model_not_allowed"]
    case "NotFound":
      return ["invalid_request_error", /model/i.test(error.message) ? "model_not_found" : "not_found"]
    case "MethodNotAllowed":
      return ["invalid_request_error", "method_not_allowed"]
    case "PayloadTooLarge":
      return ["invalid_request_error", "request_too_large"]
    case "KeyRateLimited":
      return ["requests", "rate_limit_exceeded"]
    case "KeyBudgetExhausted":
      return ["insufficient_quota", "insufficient_quota"]
    case "PipelineBudgetExhausted":
      return ["insufficient_quota", "pipeline_budget_exhausted"]
    case "Internal":
      return ["server_error", "internal_error"]
    case "Unavailable":
      return ["server_error", "service_unavailable"]
  }
}

/**
 * Render a gateway error. `param` names the request field at fault when the route knows it.
 *
 * @category rendering
 */
export const render = (error: GatewayError, param?: string | undefined): Rendered => {
  const [type, code] = typeAndCode(error)
  const retryAfter = retryAfterOf(error)
  const headers: Record<string, string> =
    retryAfter === undefined
      ? {}
      : {
          "retry-after": String(retryAfter),
          ...(retryAfter > sdkRetryCeilingSeconds ? { "x-should-retry": "false" } : {}),
        }
  return {
    status: httpStatus(error),
    headers,
    body: { error: { message: error.message, type, param: param ?? null, code } },
  }
}

/**
 * The OpenAI wire for `Http.handler`: the body above, the status of each class, `Retry-After` (and
 * `x-should-retry: false` past 60 s) and the `x-peel-*` headers.
 *
 * @category rendering
 */
export const wire: Http.Wire = {
  renderError: (error, requestId) => {
    const rendered = render(error, paramOf(error))
    return Http.json(rendered.body, rendered.status, { ...Http.errorHeaders(error, requestId), ...rendered.headers })
  },
}

/** The `param` a refused body names, kept beside the error it became (errors carry no `param`). */
const params = new WeakMap<object, string>()

/** Remember the field at fault for an error made from a {@link Refusal}. @category rendering */
export const withParam = <E extends GatewayError>(error: E, refusal: Refusal): E => {
  if (refusal.param !== undefined) params.set(error, refusal.param)
  return error
}

/** The field at fault recorded by {@link withParam}. @category rendering */
export const paramOf = (error: GatewayError): string | undefined => params.get(error)
