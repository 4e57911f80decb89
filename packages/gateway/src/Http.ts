/**
 * What every route shares: the request id, the body read under {@link maxBodyBytes}, the client's key
 * from wherever its SDK puts it, errors rendered in the route's own wire shape with the `x-peel-*`
 * headers, the structured access log (no prompt, no key, no query string), events for requests that
 * failed before a run, and refusing new work while the gateway drains.
 *
 * A route module wraps each handler with {@link handler}:
 *
 * ```ts
 * export const routes = HttpRouter.use(Effect.fnUntraced(function* (router) {
 *   const generate = yield* Http.handler({ route: "gemini.generateContent", wire: GeminiErrors.wire }, (call) => ...)
 *   yield* router.add("POST", "/v1beta/models/*", generate)
 * }))
 * ```
 *
 * @since 0.1.0
 */
import { Readable } from "node:stream"
import { Errors } from "@peel/contract"
import { ByteSize, Context, Effect, Layer } from "effect"
import { HttpIncomingMessage, type HttpServerRequest, HttpServerResponse } from "effect/http"
import {
  BadRequest,
  type GatewayError,
  httpStatus,
  Internal,
  isGatewayError,
  maxBodyBytes,
  PayloadTooLarge,
  retryAfterOf,
  Unavailable,
} from "./Errors.ts"
import { GatewayEvents } from "./Events.ts"
import { failureHeaders, failureOf, newRequestId, wasPublished } from "./Execute.ts"
import * as JsonBytes from "./JsonBytes.ts"
import type { Caller } from "./KeyPolicy.ts"

// ---------------------------------------------------------------------------------------------------
// access log

/** One line of the access log: what was asked and what it cost, never a prompt, a key or a query string. @category access log */
export interface AccessEntry {
  readonly time: string
  readonly requestId: string
  readonly method: string
  /** The path without its query string (`?key=` would be a secret). */
  readonly path: string
  readonly route: string
  readonly status: number
  readonly latencyMs: number
  /** The virtual key's name (never its secret). */
  readonly key?: string | undefined
  readonly model?: string | undefined
  readonly channel?: string | undefined
  readonly costUsd?: number | undefined
  readonly cache?: string | undefined
  readonly attempts?: number | undefined
  readonly error?: string | undefined
  /** A bug's message (redacted), when the answer was a 500. */
  readonly defect?: string | undefined
  /** The client left before the answer (its run, if any, still finished). */
  readonly clientGone?: boolean | undefined
}

/** Where access-log lines go. @category access log */
export class AccessLog extends Context.Service<AccessLog, { readonly write: (entry: AccessEntry) => void }>()(
  "@peel/gateway/AccessLog",
) {}

/** One JSON line per request to `write` (stderr by default). @category access log */
export const layerAccessLog = (
  write: (line: string) => void = (line) => process.stderr.write(line),
): Layer.Layer<AccessLog> =>
  Layer.succeed(AccessLog, {
    write: (entry) => {
      try {
        write(`${JSON.stringify({ type: "access", ...entry })}\n`)
      } catch {
        // a broken log sink never breaks an answer
      }
    },
  })

/** No access log. @category access log */
export const layerAccessLogOff: Layer.Layer<AccessLog> = Layer.succeed(AccessLog, { write: () => {} })

// ---------------------------------------------------------------------------------------------------
// drain

/** Whether the gateway still takes new requests (false once SIGTERM started the drain). @category drain */
export class Drain extends Context.Service<
  Drain,
  { readonly draining: () => boolean; readonly start: Effect.Effect<void> }
>()("@peel/gateway/Drain") {}

/** @category drain */
export const layerDrain: Layer.Layer<Drain> = Layer.sync(Drain, () => {
  let draining = false
  return {
    draining: () => draining,
    start: Effect.sync(() => {
      draining = true
    }),
  }
})

// ---------------------------------------------------------------------------------------------------
// wire

/** How a wire renders a gateway error (its own body shape; the status is {@link httpStatus}'s unless it says otherwise). @category wire */
export interface Wire {
  readonly renderError: (error: GatewayError, requestId: string) => HttpServerResponse.HttpServerResponse
}

/** Answers at least this long go out as their pieces, never joined. */
const piecewiseFrom = 1024 * 1024

/**
 * A JSON answer with headers; images in it as {@link JsonBytes.Base64} are written once, as bytes. An
 * image answer (a megabyte or more) is written as its pieces — the upstream's base64 among them, as it
 * arrived — with its `content-length`, so no buffer the size of the answer is ever allocated for it.
 *
 * @category responses
 */
export const json = (
  body: unknown,
  status: number,
  headers: Record<string, string> = {},
): HttpServerResponse.HttpServerResponse => {
  const encoded = JsonBytes.encodePieces(body)
  const contentType = "application/json; charset=utf-8"
  if (encoded.length < piecewiseFrom || encoded.pieces.length === 1)
    return HttpServerResponse.uint8Array(JsonBytes.join(encoded), { status, contentType, headers })
  return HttpServerResponse.raw(Readable.from(encoded.pieces), {
    status,
    contentType,
    headers: { ...headers, "content-length": String(encoded.length) },
  })
}

/** The headers every error answer carries: `x-peel-*`, and `Retry-After` when the error has one. @category responses */
export const errorHeaders = (error: GatewayError, requestId: string): Record<string, string> => {
  const retryAfter = retryAfterOf(error)
  return {
    ...failureHeaders(requestId, failureOf(error)),
    ...(retryAfter === undefined ? {} : { "retry-after": String(retryAfter) }),
  }
}

// ---------------------------------------------------------------------------------------------------
// request helpers

/**
 * The client's key: `x-goog-api-key` (the Gemini SDKs), `?key=` (Google's REST form), `Authorization:
 * Bearer` (OpenAI SDKs and most proxies' clients), or `x-api-key`. Undefined when none was sent.
 *
 * @category request
 */
export const secretOf = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const header = (name: string): string | undefined => {
    const value = request.headers[name]
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined
  }
  const goog = header("x-goog-api-key")
  if (goog !== undefined) return goog
  const bearer = /^Bearer\s+(.+)$/i.exec(header("authorization") ?? "")?.[1]?.trim()
  if (bearer !== undefined && bearer !== "") return bearer
  const fromQuery = searchParamsOf(request).get("key")
  if (fromQuery !== null && fromQuery.trim() !== "") return fromQuery.trim()
  return header("x-api-key")
}

/** The query string's parameters. @category request */
export const searchParamsOf = (request: HttpServerRequest.HttpServerRequest): URLSearchParams => {
  const at = request.url.indexOf("?")
  return new URLSearchParams(at === -1 ? "" : request.url.slice(at + 1))
}

/** The path without its query string. @category request */
export const pathOf = (request: HttpServerRequest.HttpServerRequest): string => {
  const at = request.url.indexOf("?")
  return at === -1 ? request.url : request.url.slice(0, at)
}

const tooLarge = () =>
  new PayloadTooLarge({
    message: `the request body is larger than ${maxBodyBytes} bytes (${maxBodyBytes / 1024 / 1024} MiB: 14 reference images of 15 MB together, base64)`,
  })

/**
 * The body's bytes, at most {@link maxBodyBytes}: a larger `Content-Length` is refused before a byte is
 * read, a chunked body once it passes the limit. @category request
 */
export const readBody = (
  request: HttpServerRequest.HttpServerRequest,
): Effect.Effect<Uint8Array, PayloadTooLarge | BadRequest> => {
  const declared = Number(request.headers["content-length"] ?? Number.NaN)
  if (Number.isFinite(declared) && declared > maxBodyBytes) return Effect.fail(tooLarge())
  return request.arrayBuffer.pipe(
    Effect.map((buffer) => new Uint8Array(buffer)),
    Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
    Effect.catch((error) =>
      Effect.fail(
        /maxBytes/i.test(String((error as { cause?: unknown }).cause ?? error))
          ? tooLarge()
          : new BadRequest({ message: "the request body could not be read" }),
      ),
    ),
  )
}

/** The body as JSON (any value); not JSON → 400. @category request */
export const readJson = (
  request: HttpServerRequest.HttpServerRequest,
): Effect.Effect<unknown, PayloadTooLarge | BadRequest> =>
  Effect.flatMap(readBody(request), (bytes) => {
    if (bytes.length === 0) return Effect.fail(new BadRequest({ message: "the request body is empty; send JSON" }))
    try {
      return Effect.succeed(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as unknown)
    } catch {
      return Effect.fail(new BadRequest({ message: "the request body is not valid JSON" }))
    }
  })

// ---------------------------------------------------------------------------------------------------
// handler

/**
 * Every answer carries the six `x-peel-*` headers: a route that made no image (a model list, a health
 * check) gets the request id, `0.000000`, `none` and `0`. @category responses
 */
export const withPeelHeaders = (
  response: HttpServerResponse.HttpServerResponse,
  requestId: string,
): HttpServerResponse.HttpServerResponse => {
  const missing = Object.entries(failureHeaders(requestId)).filter(([name]) => response.headers[name] === undefined)
  return missing.length === 0 ? response : HttpServerResponse.setHeaders(response, Object.fromEntries(missing))
}

/** What a handler gets for one request. @category handler */
export interface Call {
  readonly request: HttpServerRequest.HttpServerRequest
  readonly requestId: string
  /** Note who is calling, for the access log and events (never the secret). */
  readonly setCaller: (caller: Caller) => void
  /** Note the model asked for, for the access log of a request that fails before a run. */
  readonly setModel: (model: string) => void
}

/**
 * Wrap a route's handler: a request id, refusal while draining (503, `Connection: close`), errors rendered
 * by `wire` with the `x-peel-*` headers (and Retry-After), an event for a failure that did not reach a
 * run, one access-log line (also when the client left: status 499). A defect is a 500 in the wire's shape
 * without its details.
 *
 * @category handler
 */
export const handler = <R>(
  options: {
    readonly route: string
    readonly wire: Wire
    /** Answer while draining too (health checks, metrics); other routes refuse new work then. */
    readonly duringDrain?: boolean | undefined
  },
  handle: (call: Call) => Effect.Effect<HttpServerResponse.HttpServerResponse, GatewayError, R>,
): Effect.Effect<
  (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse, never, R>,
  never,
  AccessLog | Drain | GatewayEvents
> =>
  Effect.gen(function* () {
    const log = yield* AccessLog
    const drain = yield* Drain
    const events = yield* GatewayEvents
    return (request) => {
      const requestId = newRequestId()
      const startedAt = Date.now()
      let caller: Caller | undefined
      let model: string | undefined
      let failed: GatewayError | undefined
      let defectText: string | undefined
      const call: Call = {
        request,
        requestId,
        setCaller: (value) => {
          caller = value
        },
        setModel: (value) => {
          model = value
        },
      }
      const entry = (status: number, response?: HttpServerResponse.HttpServerResponse): AccessEntry => {
        const headers: Readonly<Record<string, string | undefined>> = response?.headers ?? {}
        const cost = headers["x-peel-cost-usd"]
        const attempts = headers["x-peel-attempts"]
        return {
          time: new Date(startedAt).toISOString(),
          requestId,
          method: request.method,
          path: pathOf(request),
          route: options.route,
          status,
          latencyMs: Date.now() - startedAt,
          key: caller?.name,
          model: headers["x-peel-model"] ?? model,
          channel: headers["x-peel-channel"],
          costUsd: cost === undefined ? undefined : Number(cost),
          cache: headers["x-peel-cache"],
          attempts: attempts === undefined ? undefined : Number(attempts),
          error: failed?._tag,
          ...(defectText === undefined ? {} : { defect: defectText }),
        }
      }
      const answer =
        drain.draining() && options.duringDrain !== true
          ? Effect.fail(
              new Unavailable({
                retryAfterSeconds: 5,
                message: "the gateway is shutting down; retry on another instance",
              }),
            )
          : handle(call)
      return answer.pipe(
        Effect.catch((error: GatewayError) =>
          Effect.gen(function* () {
            failed = error
            if (!wasPublished(error))
              yield* events.publish({
                requestId,
                route: options.route,
                keyName: caller?.name,
                model,
                status: httpStatus(error),
                latencyMs: Date.now() - startedAt,
                costUsd: 0,
                cache: "none",
                attempts: 0,
                error: error._tag,
                images: 0,
                startedAt,
              })
            return options.wire.renderError(error, requestId)
          }),
        ),
        Effect.catchDefect((defect) =>
          Effect.sync(() => {
            failed = isGatewayError(defect)
              ? defect
              : new Internal({ message: "the gateway failed on this request (a bug: see its log)" })
            // For the operator, in the access log: the defect's own message, redacted and cut (never its stack).
            defectText = Errors.redact(defect instanceof Error ? `${defect.name}: ${defect.message}` : String(defect))
            return options.wire.renderError(failed, requestId)
          }),
        ),
        Effect.map((response) => {
          const answered = withPeelHeaders(response, requestId)
          // While draining, every answer closes its connection, so the server's close is not held open by keep-alive.
          return drain.draining() ? HttpServerResponse.setHeader(answered, "connection", "close") : answered
        }),
        Effect.tap((response) => Effect.sync(() => log.write(entry(response.status, response)))),
        Effect.onInterrupt(() => Effect.sync(() => log.write({ ...entry(499), clientGone: true }))),
      )
    }
  })
