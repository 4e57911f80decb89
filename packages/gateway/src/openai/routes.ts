/**
 * The OpenAI-shaped routes, so the `openai` SDKs (and OpenRouter clients) change only their base URL:
 *
 * - `POST /v1/images/generations`, `POST /v1/images/edits` (multipart) — the Images API;
 * - `POST /v1/chat/completions` — images in `message.images[].image_url.url` (OpenRouter's shape);
 * - `GET /v1/models` — the models the pipeline's channels serve;
 * - `GET /v1/files/images/{token}.{ext}` — the images of `response_format: "url"` answers, for
 *   {@link ImageLinks.defaultTtlMillis one hour}.
 *
 * Every image route maps its body onto one `ImageRequest` (`Requests`) and runs it through
 * `Execute.execute` — the one path of every route: key policy, routing, retry, cache, budgets, costs — and
 * answers with the `x-peel-*` headers. `n` images are `n` runs of the pipeline, concurrently; when some of
 * them fail the answer carries the images that were made (each was paid for) and `x-peel-images-failed`
 * says how many were not; when all fail, the first failure is the answer. The key is read from
 * `Authorization: Bearer` (what the SDKs send).
 *
 * @since 0.5.0
 */
import { Clock, Effect, Option, Result } from "effect"
import {
  type HttpRouter,
  HttpServerError,
  type HttpServerRequest,
  HttpServerResponse,
  type Multipart,
} from "effect/http"
import { Stream } from "effect"
import { BadRequest, type GatewayError, maxBodyBytes, NotFound, PayloadTooLarge } from "../Errors.ts"
import { Execute, type Hints, failureHeaders, failureOf, newRequestId, type Outcome, peelHeaders, wasPublished } from "../Execute.ts"
import { GatewayEvents } from "../Events.ts"
import { KeyPolicy } from "../KeyPolicy.ts"
import * as OpenAiErrors from "./Errors.ts"
import * as ImageLinks from "./ImageLinks.ts"
import * as Requests from "./Requests.ts"
import * as Responses from "./Responses.ts"

/** The routes' names in events and the access log. @category names */
export const routeNames = {
  generations: "openai.images.generations",
  edits: "openai.images.edits",
  chat: "openai.chat.completions",
  models: "openai.models",
  files: "openai.files",
} as const

const bearerOf = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "")
  return match?.[1]?.trim()
}

const hintsOf = (request: HttpServerRequest.HttpServerRequest): Hints => ({
  use: request.headers["x-peel-use"],
  priority: request.headers["x-peel-priority"],
})

/** `http(s)://HOST` the caller reached us at, for links. */
const originOf = (request: HttpServerRequest.HttpServerRequest): string => {
  const proto = request.headers["x-forwarded-proto"] === "https" ? "https" : "http"
  return `${proto}://${request.headers.host ?? "127.0.0.1"}`
}

const bodyError = (error: HttpServerError.HttpServerError | Multipart.MultipartError): GatewayError => {
  const tooLarge =
    error._tag === "MultipartError"
      ? error.reason._tag !== "Parse" && error.reason._tag !== "InternalError"
      : error.reason._tag === "RequestParseError" && error.reason.reason === "BodyTooLarge"
  return tooLarge
    ? new PayloadTooLarge({ message: `the request body is larger than ${maxBodyBytes} bytes` })
    : new BadRequest({
        message: error._tag === "MultipartError" ? "the body is not valid multipart/form-data" : "could not read the request body",
      })
}

const readJson = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<unknown, GatewayError> =>
  Effect.flatMap(Effect.mapError(request.text, bodyError), (text) =>
    Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: () => new BadRequest({ message: "the body is not valid JSON" }),
    }),
  )

const readForm = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<ReadonlyArray<Requests.FormPart>, GatewayError> =>
  (request.headers["content-type"] ?? "").toLowerCase().includes("multipart/form-data")
    ? request.multipartStream.pipe(
        Stream.mapEffect(
          (part): Effect.Effect<Requests.FormPart, Multipart.MultipartError> =>
            part._tag === "Field"
              ? Effect.succeed({ _tag: "Field", key: part.key, value: part.value })
              : Effect.map(part.contentEffect, (bytes) => ({
                  _tag: "File",
                  key: part.key,
                  contentType: part.contentType,
                  bytes,
                })),
        ),
        Stream.runCollect,
        Effect.mapError(bodyError),
      )
    : Effect.fail(new BadRequest({ message: "images/edits takes multipart/form-data (image or image[] files and the fields)" }))

const refusalError = (refusal: Requests.Refusal): GatewayError =>
  OpenAiErrors.withParam(
    refusal._tag === "UnknownModel" ? new NotFound({ message: refusal.message }) : new BadRequest({ message: refusal.message }),
    refusal,
  )

const decoded = <A>(result: Result.Result<A, Requests.Refusal>): Effect.Effect<A, GatewayError> =>
  Result.isSuccess(result) ? Effect.succeed(result.success) : Effect.fail(refusalError(result.failure))

const json = (body: unknown, headers: Record<string, string>, status = 200) =>
  HttpServerResponse.jsonUnsafe(body, { status, headers })

const secondsNow = Effect.map(Clock.currentTimeMillis, (millis) => Math.floor(millis / 1000))

/** The `x-peel-*` headers, plus how many of `n` images were not made. */
const answerHeaders = (outcome: Outcome, asked: number): Record<string, string> => ({
  ...peelHeaders(outcome),
  ...(outcome.images.length < asked ? { "x-peel-images-failed": String(asked - outcome.images.length) } : {}),
})

/**
 * Add the OpenAI-shaped routes to `router`. Needs the gateway's {@link Execute}, {@link KeyPolicy},
 * {@link GatewayEvents} and {@link ImageLinks.ImageLinks}.
 *
 * @category routes
 */
export const add = Effect.fn("openai.routes.add")(function* (router: HttpRouter.HttpRouter) {
  const executor = yield* Execute
  const policy = yield* KeyPolicy
  const events = yield* GatewayEvents
  const links = yield* ImageLinks.ImageLinks

  /** Answer an error in OpenAI's shape, publishing its event unless Execute did. */
  const failed = (route: string, requestId: string, startedAt: number, error: GatewayError) =>
    Effect.gen(function* () {
      if (!wasPublished(error))
        yield* events.publish({
          requestId,
          route,
          status: OpenAiErrors.render(error).status,
          latencyMs: (yield* Clock.currentTimeMillis) - startedAt,
          costUsd: 0,
          cache: "none",
          attempts: 0,
          error: error._tag,
          images: 0,
          startedAt,
        })
      const rendered = OpenAiErrors.render(error, OpenAiErrors.paramOf(error))
      return json(rendered.body, { ...rendered.headers, ...failureHeaders(requestId, failureOf(error)) }, rendered.status)
    })

  /** One route's handler: a fresh request id, errors rendered once. */
  const handler =
    (
      route: string,
      body: (request: HttpServerRequest.HttpServerRequest, requestId: string) => Effect.Effect<HttpServerResponse.HttpServerResponse, GatewayError>,
    ) =>
    (request: HttpServerRequest.HttpServerRequest) =>
      Effect.gen(function* () {
        const requestId = newRequestId()
        const startedAt = yield* Clock.currentTimeMillis
        return yield* body(request, requestId).pipe(Effect.catch((error) => failed(route, requestId, startedAt, error)))
      })

  const imagesAnswer = (
    request: HttpServerRequest.HttpServerRequest,
    requestId: string,
    route: string,
    ask: Requests.ImagesAsk,
  ) =>
    Effect.gen(function* () {
      const caller = yield* policy.authenticate(bearerOf(request))
      const outcome = yield* executor.execute({
        route,
        requestId,
        caller,
        request: ask.n > 1 ? { ...ask.request, n: ask.n } : ask.request,
        hints: hintsOf(request),
      })
      const data: Array<Responses.ImageDatum> = []
      for (const image of outcome.images) {
        if (ask.responseFormat === "url") {
          const token = yield* links.put(image)
          data.push({ url: `${originOf(request)}${ImageLinks.pathOf(token, image.mimeType)}` })
        } else data.push({ b64_json: Responses.base64(image.bytes) })
      }
      const created = yield* secondsNow
      return json(Responses.images({ created, data, made: [outcome] }), answerHeaders(outcome, ask.n))
    })

  yield* router.add(
    "POST",
    "/v1/images/generations",
    handler(routeNames.generations, (request, requestId) =>
      Effect.gen(function* () {
        const body = yield* readJson(request)
        const ask = yield* decoded(Requests.imagesGeneration(body))
        return yield* imagesAnswer(request, requestId, routeNames.generations, ask)
      }),
    ),
  )

  yield* router.add(
    "POST",
    "/v1/images/edits",
    handler(routeNames.edits, (request, requestId) =>
      Effect.gen(function* () {
        const parts = yield* readForm(request)
        const ask = yield* decoded(Requests.imagesEdit(parts))
        return yield* imagesAnswer(request, requestId, routeNames.edits, ask)
      }),
    ),
  )

  yield* router.add(
    "POST",
    "/v1/chat/completions",
    handler(routeNames.chat, (request, requestId) =>
      Effect.gen(function* () {
        const body = yield* readJson(request)
        const ask = yield* decoded(Requests.chatCompletion(body))
        const caller = yield* policy.authenticate(bearerOf(request))
        const created = yield* secondsNow
        const id = `chatcmpl-${requestId}`
        const ran = yield* executor
          .execute({
            route: routeNames.chat,
            requestId,
            caller,
            request: ask.n > 1 ? { ...ask.request, n: ask.n } : ask.request,
            hints: hintsOf(request),
          })
          .pipe(Effect.result)
        if (Result.isFailure(ran)) {
          const error = ran.failure
          // A safety block is a filtered choice, as OpenAI reports one; every other error is an error.
          if (error._tag !== "SafetyBlocked") return yield* Effect.fail(error)
          const model = failureOf(error)?.model ?? ask.request.model ?? "unknown"
          return json(
            Responses.chatCompletion({ id, created, model, choices: [{ _tag: "Blocked", reason: error.reason }] }),
            failureHeaders(requestId, failureOf(error)),
          )
        }
        const outcome = ran.success
        // One choice per image; the model's text goes with the first.
        const choices = outcome.images.map((image, index) => ({
          requestId,
          images: [image],
          text: index === 0 ? outcome.text : undefined,
          model: outcome.model,
          usage: index === 0 ? outcome.usage : undefined,
          costUsd: index === 0 ? outcome.costUsd : 0,
        }))
        return json(
          Responses.chatCompletion({ id, created, model: outcome.model, choices }),
          answerHeaders(outcome, ask.n),
        )
      }),
    ),
  )

  yield* router.add(
    "GET",
    "/v1/models",
    handler(routeNames.models, (request) =>
      Effect.gen(function* () {
        yield* policy.authenticate(bearerOf(request))
        const served = new Set([...executor.runner.channels.values()].flatMap((channel) => channel.capabilities.models))
        const ids = Responses.listedModels().filter((id) => served.has(id))
        return json(Responses.models(ids.length === 0 ? Responses.listedModels() : ids), {})
      }),
    ),
  )

  yield* router.add(
    "GET",
    "/v1/files/images/:file",
    handler(routeNames.files, (request) =>
      Effect.gen(function* () {
        const segment = request.url.split("?")[0]!.split("/").at(-1) ?? ""
        const token = ImageLinks.tokenOf(segment)
        const found = token === undefined ? Option.none() : yield* links.get(token)
        if (Option.isNone(found))
          return yield* Effect.fail(new NotFound({ message: "no such image link, or it has expired" }))
        const now = yield* Clock.currentTimeMillis
        return HttpServerResponse.uint8Array(found.value.bytes, {
          contentType: found.value.mimeType,
          headers: { "cache-control": `private, max-age=${Math.max(0, Math.floor((found.value.expiresAt - now) / 1000))}` },
        })
      }),
    ),
  )
})
