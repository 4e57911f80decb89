/**
 * The admin API: the same operations as `peel keys`, over HTTP, for a gateway started with an admin key
 * (`peel serve --admin-key-env VAR`: the key is the value of the environment variable VAR). Without one,
 * no `/admin/*` route exists (404).
 *
 * Every call sends the admin key as `Authorization: Bearer ADMIN_KEY` (or `x-peel-admin-key`); a missing
 * or wrong one is a 401. Virtual keys are not admin keys.
 *
 * - `GET /admin/keys` → `200 {"keys": [KeyView, ...]}`: name, prefix, status, limits, spend this window.
 * - `POST /admin/keys` with `{"name": "team-a", "budget": "5/1d", "rpm": 30, "models": ["gemini-3-pro-image"]}`
 *   (all but `name` optional) → `201 {"key": "peel_…", ...KeyView}`: the only time the key is shown.
 *   A bad field → 400; an active key with that name → 409.
 * - `DELETE /admin/keys/{name}` → `200 KeyView` (revoked); no active key of that name → 404.
 *
 * Errors are `{"error": {"code", "message", "status"}}` (Google's shape, as the gateway's other non-wire
 * routes). Nothing answered or logged holds a secret: the access log names the route, never the key.
 *
 * @since 0.5.0
 */
import { KeySpend, VirtualKeys } from "@peel/core"
import { Effect, Result, Schema } from "effect"
import { HttpRouter, type HttpServerRequest } from "effect/http"
import { BadRequest, type GatewayError, httpStatus, NotFound, Unauthorized, Unavailable } from "../Errors.ts"
import * as GeminiWire from "../gemini/GeminiWire.ts"
import * as Http from "../Http.ts"
import { Admin } from "../keys/Keys.ts"

const wire: Http.Wire = {
  renderError: (error, requestId) =>
    Http.json(GeminiWire.errorBody(error), httpStatus(error), Http.errorHeaders(error, requestId)),
}

/** The body of `POST /admin/keys`. @category schemas */
export const CreateBody = Schema.Struct({
  name: Schema.String,
  /** `USD/WINDOW`: `5/1d`, `0.50/1h`. */
  budget: Schema.optional(Schema.String),
  rpm: Schema.optional(Schema.Int),
  models: Schema.optional(Schema.Array(Schema.String)),
})

const decodeCreate = Schema.decodeUnknownResult(CreateBody, { onExcessProperty: "error" })

const adminKeyOf = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const header = request.headers["x-peel-admin-key"]
  if (typeof header === "string" && header !== "") return header
  return /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "")?.[1]?.trim()
}

const storeDown = (error: VirtualKeys.KeyStoreError): GatewayError =>
  new Unavailable({ retryAfterSeconds: 5, message: `the key store cannot be used (${error.message})` })

/** Mount `/admin/keys` when the gateway has an admin key. @category routes */
export const routes = HttpRouter.use(
  Effect.fnUntraced(function* (router) {
    const admin = yield* Admin
    const keys = admin.keys
    const ledger = admin.ledger
    if (!admin.enabled || keys === undefined || ledger === undefined) return

    const authorized = (call: Http.Call) =>
      admin.accepts(adminKeyOf(call.request))
        ? Effect.void
        : Effect.fail(
            new Unauthorized({ message: "the admin API needs the admin key: Authorization: Bearer ADMIN_KEY" }),
          )

    const list = yield* Http.handler({ route: "admin.keys.list", wire }, (call) =>
      Effect.gen(function* () {
        yield* authorized(call)
        const records = yield* keys.list.pipe(Effect.mapError(storeDown))
        const views = yield* Effect.forEach(records, (record) => KeySpend.view(ledger, record))
        return Http.json({ keys: views }, 200, { "x-peel-request-id": call.requestId })
      }),
    )

    const create = yield* Http.handler({ route: "admin.keys.create", wire }, (call) =>
      Effect.gen(function* () {
        yield* authorized(call)
        const decoded = decodeCreate(yield* Http.readJson(call.request))
        if (Result.isFailure(decoded))
          return yield* new BadRequest({ message: `POST /admin/keys: ${String(decoded.failure).split("\n")[0]}` })
        const body = decoded.success
        let budget: VirtualKeys.KeyBudget | undefined
        if (body.budget !== undefined) {
          const parsed = VirtualKeys.parseBudget(body.budget)
          if (typeof parsed === "string") return yield* new BadRequest({ message: `budget: ${parsed}` })
          budget = parsed
        }
        const made = yield* Effect.result(
          VirtualKeys.create(keys, body.name, {
            ...(budget === undefined ? {} : { budget }),
            ...(body.rpm === undefined ? {} : { rpm: body.rpm }),
            ...(body.models === undefined ? {} : { models: body.models }),
          }),
        )
        const headers = { "x-peel-request-id": call.requestId }
        if (Result.isFailure(made)) {
          const error = made.failure
          switch (error._tag) {
            case "InvalidKeySpec":
              return yield* new BadRequest({ message: error.message })
            case "KeyNameTaken":
              return Http.json({ error: { code: 409, message: error.message, status: "ALREADY_EXISTS" } }, 409, headers)
            case "KeyStoreError":
              return yield* storeDown(error)
          }
        }
        const { record, secret } = made.success
        return Http.json({ key: secret, ...(yield* KeySpend.view(ledger, record)) }, 201, {
          ...headers,
          "cache-control": "no-store",
        })
      }),
    )

    const revoke = yield* Http.handler({ route: "admin.keys.revoke", wire }, (call) =>
      Effect.gen(function* () {
        yield* authorized(call)
        const raw = Http.pathOf(call.request).replace(/^\/admin\/keys\//, "")
        let name: string
        try {
          name = decodeURIComponent(raw)
        } catch {
          return yield* new BadRequest({ message: "the key's name in the path is not valid percent-encoding" })
        }
        const revoked = yield* keys.revoke(name).pipe(
          Effect.catchTags({
            KeyNotFound: (error) => Effect.fail(new NotFound({ message: error.message })),
            KeyStoreError: (error) => Effect.fail(storeDown(error)),
          }),
        )
        return Http.json(yield* KeySpend.view(ledger, revoked), 200, { "x-peel-request-id": call.requestId })
      }),
    )

    yield* router.add("GET", "/admin/keys", list)
    yield* router.add("POST", "/admin/keys", create)
    yield* router.add("DELETE", "/admin/keys/*", revoke)
  }),
)
