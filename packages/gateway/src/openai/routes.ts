/**
 * The OpenAI-shaped routes, so the `openai` SDKs (and OpenRouter clients) change only their base URL:
 *
 * - `POST /v1/images/generations`, `POST /v1/images/edits` (multipart) — the Images API;
 * - `POST /v1/chat/completions` — images in `message.images[].image_url.url` (OpenRouter's shape);
 * - `GET /v1/models` and `GET /v1/models/{id}` — the models the pipeline's channels serve (a Gemini client
 *   asking the same paths gets Gemini's shapes, see `GeminiRoutes.isGeminiClient`);
 * - `GET /v1/files/images/{token}.{ext}` — the images of `response_format: "url"` answers, for one hour
 *   ({@link ImageLinks}).
 *
 * Every image route maps its body onto one `ImageRequest` (`Requests`) and runs it through
 * `Execute.execute` — the one path of every route: key policy, routing, retry, cache, budgets, costs — and
 * answers with the `x-peel-*` headers. `n` images are `n` runs of the pipeline, concurrently; when some of
 * them fail the answer carries the images that were made (each was paid for) and `x-peel-images-failed`
 * says how many were not; when all fail, the first failure is the answer. The key is read from
 * `Authorization: Bearer` (what the `openai` SDKs send).
 *
 * @since 0.5.0
 */
import { Catalog } from "@peel/contract"
import { ByteSize, Clock, Effect, Layer, Option, Result, Stream } from "effect"
import {
  HttpIncomingMessage,
  HttpRouter,
  type HttpServerRequest,
  HttpServerResponse,
  type Multipart,
} from "effect/http"
import { BadRequest, type GatewayError, maxBodyBytes, NotFound, PayloadTooLarge } from "../Errors.ts"
import { Execute, failureHeaders, failureOf, type Outcome, peelHeaders } from "../Execute.ts"
import * as GeminiRoutes from "../gemini/routes.ts"
import * as Http from "../Http.ts"
import * as JsonBytes from "../JsonBytes.ts"
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
  model: "openai.models.retrieve",
  files: "openai.files",
} as const

const header = (request: HttpServerRequest.HttpServerRequest, name: string): string | undefined => {
  const value = request.headers[name]
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined
}

const hintsOf = (request: HttpServerRequest.HttpServerRequest) => ({
  use: header(request, "x-peel-use"),
  priority: header(request, "x-peel-priority"),
})

/** `http(s)://HOST` the caller reached the gateway at, for links. */
const originOf = (request: HttpServerRequest.HttpServerRequest): string =>
  `${header(request, "x-forwarded-proto") === "https" ? "https" : "http"}://${header(request, "host") ?? "127.0.0.1"}`

const tooLarge = () => new PayloadTooLarge({ message: `the request body is larger than ${maxBodyBytes} bytes` })

const multipartError = (error: Multipart.MultipartError): GatewayError =>
  error.reason._tag === "Parse" || error.reason._tag === "InternalError"
    ? new BadRequest({ message: "the body is not valid multipart/form-data" })
    : tooLarge()

/** The parts of a multipart body (files read into memory), under the gateway's body limit. */
const readForm = (
  request: HttpServerRequest.HttpServerRequest,
): Effect.Effect<ReadonlyArray<Requests.FormPart>, GatewayError> => {
  if (!(header(request, "content-type") ?? "").toLowerCase().startsWith("multipart/form-data"))
    return Effect.fail(
      new BadRequest({ message: "images/edits takes multipart/form-data (image or image[] files and the fields)" }),
    )
  const declared = Number(request.headers["content-length"] ?? Number.NaN)
  if (Number.isFinite(declared) && declared > maxBodyBytes) return Effect.fail(tooLarge())
  return request.multipartStream.pipe(
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
    Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
    Effect.mapError(multipartError),
  )
}

const decoded = <A>(result: Result.Result<A, Requests.Refusal>): Effect.Effect<A, GatewayError> => {
  if (Result.isSuccess(result)) return Effect.succeed(result.success)
  const refusal = result.failure
  return Effect.fail(
    OpenAiErrors.withParam(
      refusal._tag === "UnknownModel"
        ? new NotFound({ message: refusal.message })
        : new BadRequest({ message: refusal.message }),
      refusal,
    ),
  )
}

const secondsNow = Effect.map(Clock.currentTimeMillis, (millis) => Math.floor(millis / 1000))

/** The `x-peel-*` headers, plus how many of `n` images were not made. */
const answerHeaders = (outcome: Outcome, asked: number): Record<string, string> => ({
  ...peelHeaders(outcome),
  ...(outcome.images.length < asked ? { "x-peel-images-failed": String(asked - outcome.images.length) } : {}),
})

/** A chat completion as JSON, or as server-sent events when the client asked to stream. */
const chatAnswer = (
  ask: Requests.ChatAsk,
  completion: ReturnType<typeof Responses.chatCompletion>,
  headers: Record<string, string>,
) =>
  ask.stream
    ? HttpServerResponse.uint8Array(Responses.chatCompletionEvents(completion), {
        status: 200,
        contentType: "text/event-stream",
        headers: { ...headers, "cache-control": "no-cache" },
      })
    : Http.json(completion, 200, headers)

const withCount = (request: Requests.ImagesAsk["request"], n: number) => (n > 1 ? { ...request, n } : request)

/**
 * Mount the OpenAI-shaped routes (with their own in-memory {@link ImageLinks} for `url` answers).
 *
 * @category routes
 */
export const routes = HttpRouter.use(
  Effect.fnUntraced(function* (router) {
    const execute = yield* Execute
    const policy = yield* KeyPolicy
    const links = yield* ImageLinks.ImageLinks
    const channels = execute.runner.channels
    const wire = OpenAiErrors.wire

    /** The Images API answer for one decoded request: run it, answer `b64_json` or links. */
    const images = (call: Http.Call, route: string, ask: Requests.ImagesAsk) =>
      Effect.gen(function* () {
        const caller = yield* policy.authenticate(Http.secretOf(call.request))
        call.setCaller(caller)
        if (ask.request.model !== undefined) call.setModel(ask.request.model)
        const outcome = yield* execute.execute({
          route,
          requestId: call.requestId,
          caller,
          request: withCount(ask.request, ask.n),
          hints: hintsOf(call.request),
        })
        const data: Array<Responses.ImageDatum> = []
        for (const image of outcome.images) {
          if (ask.responseFormat === "url") {
            const token = yield* links.put(image)
            data.push({ url: `${originOf(call.request)}${ImageLinks.pathOf(token, image.mimeType)}` })
          } else data.push({ b64_json: new JsonBytes.Base64(image.bytes) })
        }
        const created = yield* secondsNow
        return Http.json(Responses.images({ created, data, made: [outcome] }), 200, answerHeaders(outcome, ask.n))
      })

    const generations = yield* Http.handler({ route: routeNames.generations, wire }, (call) =>
      Effect.gen(function* () {
        const body = yield* Http.readJson(call.request)
        const ask = yield* decoded(Requests.imagesGeneration(body))
        return yield* images(call, routeNames.generations, ask)
      }),
    )

    const edits = yield* Http.handler({ route: routeNames.edits, wire }, (call) =>
      Effect.gen(function* () {
        const parts = yield* readForm(call.request)
        const ask = yield* decoded(Requests.imagesEdit(parts))
        return yield* images(call, routeNames.edits, ask)
      }),
    )

    const chat = yield* Http.handler({ route: routeNames.chat, wire }, (call) =>
      Effect.gen(function* () {
        const body = yield* Http.readJson(call.request)
        const ask = yield* decoded(Requests.chatCompletion(body))
        const caller = yield* policy.authenticate(Http.secretOf(call.request))
        call.setCaller(caller)
        if (ask.request.model !== undefined) call.setModel(ask.request.model)
        const created = yield* secondsNow
        const id = `chatcmpl-${call.requestId}`
        const ran = yield* execute
          .execute({
            route: routeNames.chat,
            requestId: call.requestId,
            caller,
            request: withCount(ask.request, ask.n),
            hints: hintsOf(call.request),
          })
          .pipe(Effect.result)
        if (Result.isFailure(ran)) {
          const error = ran.failure
          // A safety block is a filtered choice, as OpenAI reports one; every other error is an error.
          if (error._tag !== "SafetyBlocked") return yield* Effect.fail(error)
          const model = failureOf(error)?.model ?? ask.request.model ?? "unknown"
          return chatAnswer(
            ask,
            Responses.chatCompletion({ id, created, model, choices: [{ _tag: "Blocked", reason: error.reason }] }),
            failureHeaders(call.requestId, failureOf(error)),
          )
        }
        const outcome = ran.success
        // One choice per image; the model's text and the usage go with the first, the cost is the whole.
        const choices = outcome.images.map((image, index) => ({
          requestId: call.requestId,
          images: [image],
          text: index === 0 ? outcome.text : undefined,
          model: outcome.model,
          usage: index === 0 ? outcome.usage : undefined,
          costUsd: index === 0 ? outcome.costUsd : 0,
        }))
        return chatAnswer(
          ask,
          Responses.chatCompletion({ id, created, model: outcome.model, choices }),
          answerHeaders(outcome, ask.n),
        )
      }),
    )

    const models = yield* Http.handler({ route: routeNames.models, wire }, (call) =>
      Effect.gen(function* () {
        call.setCaller(yield* policy.authenticate(Http.secretOf(call.request)))
        const headers = { "x-peel-request-id": call.requestId }
        if (GeminiRoutes.isGeminiClient(call.request)) return Http.json(GeminiRoutes.listModels(channels), 200, headers)
        return Http.json(Responses.models(GeminiRoutes.servedModels(channels)), 200, headers)
      }),
    )

    /** `GET /v1/models/{id}`: one served model, for an OpenAI client or (Gemini SDK 3's `models.get`) a Gemini one. */
    const modelOf = (wireOf: Http.Wire, route: string) =>
      Http.handler({ route, wire: wireOf }, (call) =>
        Effect.gen(function* () {
          call.setCaller(yield* policy.authenticate(Http.secretOf(call.request)))
          const asked = decodeURIComponent(Http.pathOf(call.request).slice("/v1/models/".length)).replace(
            /^models\//,
            "",
          )
          const bare = asked.replace(/^google\//, "")
          const id = Catalog.findModel(bare) === undefined ? undefined : Catalog.resolveModel(bare)
          const headers = { "x-peel-request-id": call.requestId }
          if (id === undefined || !GeminiRoutes.servedModels(channels).includes(id))
            return yield* Effect.fail(
              new NotFound({ message: `The model \`${asked}\` does not exist or is not served by this pipeline` }),
            )
          if (wireOf === wire) return Http.json(Responses.models([id]).data[0], 200, headers)
          const entry = GeminiRoutes.listModels(channels).models.find((model) => model.name === `models/${id}`)
          return Http.json(entry, 200, headers)
        }),
      )
    const model = yield* modelOf(wire, routeNames.model)
    const geminiModel = yield* modelOf(GeminiRoutes.wire, "gemini.models.get")

    const files = yield* Http.handler({ route: routeNames.files, wire }, (call) =>
      Effect.gen(function* () {
        const token = ImageLinks.tokenOf(Http.pathOf(call.request).split("/").at(-1) ?? "")
        const found = token === undefined ? Option.none() : yield* links.get(token)
        if (Option.isNone(found))
          return yield* Effect.fail(new NotFound({ message: "no such image link, or it has expired" }))
        const now = yield* Clock.currentTimeMillis
        return HttpServerResponse.uint8Array(found.value.bytes, {
          contentType: found.value.mimeType,
          headers: {
            "cache-control": `private, max-age=${Math.max(0, Math.floor((found.value.expiresAt - now) / 1000))}`,
            "x-peel-request-id": call.requestId,
          },
        })
      }),
    )

    yield* router.add("POST", "/v1/images/generations", generations)
    yield* router.add("POST", "/v1/images/edits", edits)
    yield* router.add("POST", "/v1/chat/completions", chat)
    // One registration answers both `/v1/models` (the list) and `/v1/models/{id}`.
    yield* router.add("GET", "/v1/models/*", (request) =>
      /\/models\/?$/.test(Http.pathOf(request))
        ? models(request)
        : GeminiRoutes.isGeminiClient(request)
          ? geminiModel(request)
          : model(request),
    )
    yield* router.add("GET", "/v1/files/images/*", files)
  }),
).pipe(Layer.provide(ImageLinks.layerMemory()))
