/**
 * The Gemini-native routes, so `@google/genai` (`/v1/`) and `google-genai` (`/v1beta/`) users change only
 * the base URL:
 *
 * - `POST /v1beta/models/{model}:generateContent` (and `/v1/…`)
 * - `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` (one final chunk; without `alt=sse`, a
 *   JSON array of one response, as Google answers)
 * - `GET /v1beta/models`, `GET /v1beta/models/{model}` (the models this pipeline serves)
 *
 * `GET /v1/models` is shared with OpenAI's list: the OpenAI routes own that path and hand a Gemini client
 * ({@link isGeminiClient}) to {@link listModels}.
 *
 * `{model}` is a Gemini id (`gemini-3-pro-image`), an alias (`nano-banana-pro`), or `auto` to let the
 * pipeline's routing pick it (with `x-peel-priority`). Hints: `x-peel-use`, `x-peel-priority`.
 *
 * @since 0.1.0
 */
import { Catalog } from "@peel/contract"
import { Effect, Result, Schema } from "effect"
import { HttpRouter, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { type GatewayError, httpStatus, MethodNotAllowed, NotFound } from "../Errors.ts"
import { Execute, failureOf, peelHeaders } from "../Execute.ts"
import * as Http from "../Http.ts"
import { KeyPolicy } from "../KeyPolicy.ts"
import * as GeminiWire from "./GeminiWire.ts"

/** Gemini errors: `google.rpc.Status` bodies; a safety block as Gemini reports it (200, no image). @category wire */
export const wire: Http.Wire = {
  renderError: (error: GatewayError, requestId: string) => {
    const headers = Http.errorHeaders(error, requestId)
    if (error._tag === "SafetyBlocked")
      return Http.json(
        GeminiWire.blockedResponse(error.reason, error.message, failureOf(error)?.model ?? "unknown", requestId),
        200,
        headers,
      )
    return Http.json(GeminiWire.errorBody(error), httpStatus(error), headers)
  },
}

/** True for a request from a Gemini SDK or REST client (its key header or `?key=`, or Google's client header). @category routing */
export const isGeminiClient = (request: HttpServerRequest.HttpServerRequest): boolean =>
  request.headers["x-goog-api-key"] !== undefined ||
  request.headers["x-goog-api-client"] !== undefined ||
  Http.searchParamsOf(request).has("key")

const modelEntry = (id: string) => {
  const info = Catalog.findModel(id)
  return {
    name: `models/${id}`,
    baseModelId: id,
    version: id,
    displayName: id,
    description: `${id} through Peel (${info?.family ?? "image"}): sizes ${(info?.sizes ?? []).join(", ")}`,
    inputTokenLimit: 65_536,
    outputTokenLimit: 32_768,
    supportedGenerationMethods: ["generateContent", "streamGenerateContent"],
  }
}

/** The models the pipeline's channels serve (Catalog ids), in catalog order. @category routing */
export const servedModels = (
  channels: ReadonlyMap<string, { readonly capabilities: { readonly models: ReadonlyArray<string> } }>,
) => {
  const served = new Set<string>()
  for (const channel of channels.values())
    for (const model of channel.capabilities.models) served.add(Catalog.resolveModel(model))
  return Object.keys(Catalog.models).filter((id) => served.has(id) && Catalog.models[id]!.status !== "retired")
}

/** `GET …/models`: Gemini's `ListModelsResponse` (no page token: one page). @category routing */
export const listModels = (channels: Parameters<typeof servedModels>[0]) => ({
  models: servedModels(channels).map(modelEntry),
})

/** Options for every channel whose provider-options Schema takes them (the Gemini channels). */
const providerOptionsFor =
  (channels: ReadonlyMap<string, { readonly providerOptions?: Schema.Decoder<unknown> | undefined }>) =>
  (options: Record<string, unknown>): Record<string, Record<string, unknown>> | undefined => {
    const out: Record<string, Record<string, unknown>> = {}
    for (const [name, channel] of channels) {
      if (channel.providerOptions === undefined) continue
      if (Result.isSuccess(Schema.decodeUnknownResult(channel.providerOptions)(options, { onExcessProperty: "error" })))
        out[name] = options
    }
    return Object.keys(out).length === 0 ? undefined : out
  }

const fromResult = <A>(result: Result.Result<A, GatewayError>): Effect.Effect<A, GatewayError> =>
  Result.isSuccess(result) ? Effect.succeed(result.success) : Effect.fail(result.failure)

const header = (request: HttpServerRequest.HttpServerRequest, name: string): string | undefined => {
  const value = request.headers[name]
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined
}

/** `{model}:{method}` of a `/models/…` path. */
const targetOf = (path: string): { readonly model: string; readonly method: string | undefined } => {
  const tail = path.slice(path.indexOf("/models/") + "/models/".length)
  const at = tail.lastIndexOf(":")
  return at === -1 ? { model: tail, method: undefined } : { model: tail.slice(0, at), method: tail.slice(at + 1) }
}

/** Mount the Gemini routes. @category routes */
export const routes = HttpRouter.use(
  Effect.fnUntraced(function* (router) {
    const execute = yield* Execute
    const policy = yield* KeyPolicy
    const channels = execute.runner.channels
    const optionsFor = providerOptionsFor(channels)

    const generate = yield* Http.handler({ route: "gemini.generateContent", wire }, (call) =>
      Effect.gen(function* () {
        const { request } = call
        const target = targetOf(Http.pathOf(request))
        if (target.method !== "generateContent" && target.method !== "streamGenerateContent")
          return yield* new NotFound({
            message: `unknown method ${target.method ?? "(none)"}: use :generateContent or :streamGenerateContent`,
          })
        call.setModel(target.model)
        const caller = yield* policy.authenticate(Http.secretOf(request))
        call.setCaller(caller)
        const model = yield* fromResult(GeminiWire.modelOf(target.model))
        const body = yield* Http.readJson(request)
        const decoded = yield* fromResult(GeminiWire.decodeBody(body))
        const imageRequest = yield* fromResult(GeminiWire.toImageRequest(decoded, model, optionsFor))
        const outcome = yield* execute.execute({
          route: target.method === "generateContent" ? "gemini.generateContent" : "gemini.streamGenerateContent",
          requestId: call.requestId,
          caller,
          request: imageRequest,
          hints: { use: header(request, "x-peel-use"), priority: header(request, "x-peel-priority") },
        })
        const answer = GeminiWire.toResponse(outcome)
        const headers = peelHeaders(outcome)
        if (target.method === "generateContent") return Http.json(answer, 200, headers)
        if (Http.searchParamsOf(request).get("alt") === "sse")
          return HttpServerResponse.text(`data: ${JSON.stringify(answer)}\r\n\r\n`, {
            status: 200,
            contentType: "text/event-stream",
            headers: { ...headers, "cache-control": "no-cache" },
          })
        return Http.json([answer], 200, headers)
      }),
    )

    const list = yield* Http.handler({ route: "gemini.models", wire }, (call) =>
      Effect.gen(function* () {
        call.setCaller(yield* policy.authenticate(Http.secretOf(call.request)))
        return Http.json(listModels(channels), 200, { "x-peel-request-id": call.requestId })
      }),
    )

    const get = yield* Http.handler({ route: "gemini.models.get", wire }, (call) =>
      Effect.gen(function* () {
        call.setCaller(yield* policy.authenticate(Http.secretOf(call.request)))
        const target = targetOf(Http.pathOf(call.request))
        if (target.method !== undefined) return yield* new MethodNotAllowed({ message: `:${target.method} takes POST` })
        const model = yield* fromResult(GeminiWire.modelOf(target.model))
        const id = model === undefined ? undefined : Catalog.resolveModel(model)
        if (id === undefined || !servedModels(channels).includes(id))
          return yield* new NotFound({ message: `models/${target.model} is not served by this pipeline` })
        return Http.json(modelEntry(id), 200, { "x-peel-request-id": call.requestId })
      }),
    )

    yield* router.add("POST", "/v1beta/models/*", generate)
    yield* router.add("POST", "/v1/models/*", generate)
    // One registration answers both `/v1beta/models` (the list) and `/v1beta/models/{model}`.
    yield* router.add("GET", "/v1beta/models/*", (request) =>
      /\/models\/?$/.test(Http.pathOf(request)) ? list(request) : get(request),
    )
  }),
)
