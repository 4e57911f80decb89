/**
 * `/healthz` (the process answers) and `/readyz` (it should get traffic: channels built, the key store
 * answering, every readiness check passing — other stores reachable — and not draining). Both answer JSON and need no key; neither says
 * anything secret. A route nobody registered gets a 404 in Google's error shape (which the OpenAI SDKs
 * read as well: `error.message`).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { httpStatus, NotFound } from "./Errors.ts"
import { Execute } from "./Execute.ts"
import * as GeminiWire from "./gemini/GeminiWire.ts"
import * as Http from "./Http.ts"
import { KeyPolicy } from "./KeyPolicy.ts"

/** One readiness check: true when the thing it checks is usable (a store answers, a folder is writable). @category readiness */
export interface ReadinessCheck {
  readonly name: string
  readonly check: Effect.Effect<boolean>
}

/** The checks `/readyz` runs besides "channels built" and "not draining". @category readiness */
export class Readiness extends Context.Service<Readiness, ReadonlyArray<ReadinessCheck>>()("@peel/gateway/Readiness") {}

/** @category readiness */
export const layerReadiness = (checks: ReadonlyArray<ReadinessCheck>): Layer.Layer<Readiness> =>
  Layer.succeed(Readiness, checks)

const healthWire: Http.Wire = {
  renderError: (error, requestId) =>
    Http.json(GeminiWire.errorBody(error), httpStatus(error), Http.errorHeaders(error, requestId)),
}

const notFoundWire: Http.Wire = {
  renderError: (error, requestId) => Http.json(GeminiWire.errorBody(error), 404, { "x-peel-request-id": requestId }),
}

/** Mount `/healthz`, `/readyz` and the catch-all 404. @category routes */
export const routes = HttpRouter.use(
  Effect.fnUntraced(function* (router) {
    const execute = yield* Execute
    const drain = yield* Http.Drain
    const checks = yield* Readiness
    const policy = yield* KeyPolicy
    const healthz = yield* Http.handler({ route: "healthz", wire: healthWire, duringDrain: true }, () =>
      Effect.succeed(Http.json({ status: "ok" }, 200)),
    )
    const readyz = yield* Http.handler({ route: "readyz", wire: healthWire, duringDrain: true }, () =>
      Effect.gen(function* () {
        const results: Record<string, boolean> = {
          channels: execute.runner.channels.size > 0,
          accepting: !drain.draining(),
          // The key store answers: authenticating nobody is a refusal or the anonymous caller, never "unavailable".
          keys: yield* policy.authenticate(undefined).pipe(
            Effect.as(true),
            Effect.catch((error) => Effect.succeed(error._tag !== "Unavailable")),
            Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.succeed(false) }),
            Effect.catchCause(() => Effect.succeed(false)),
          ),
        }
        for (const { name, check } of checks)
          results[name] = yield* check.pipe(
            Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.succeed(false) }),
            Effect.catchCause(() => Effect.succeed(false)),
          )
        const ready = Object.values(results).every(Boolean)
        return Http.json({ status: ready ? "ready" : "not ready", checks: results }, ready ? 200 : 503)
      }),
    )
    yield* router.add("GET", "/healthz", healthz)
    yield* router.add("GET", "/readyz", readyz)
    const notFound = yield* Http.handler({ route: "notFound", wire: notFoundWire }, (call) =>
      Effect.fail(new NotFound({ message: `no route for ${call.request.method} ${Http.pathOf(call.request)}` })),
    )
    yield* router.add("*", "/*", notFound)
  }),
)
