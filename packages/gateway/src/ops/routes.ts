/**
 * The operations routes: `GET /metrics` (Prometheus text), `GET /` (the status page) and
 * `GET /status.json` (what the page polls).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { Ops } from "./Ops.ts"
import * as StatusPage from "./StatusPage.ts"

const noStore = { "cache-control": "no-store" }

/** Add the operations routes to the router. @category routes */
export const routes = HttpRouter.addAll([
  HttpRouter.route(
    "GET",
    "/metrics",
    Ops.use((ops) => ops.metrics).pipe(
      Effect.map((body) =>
        HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4; charset=utf-8", headers: noStore }),
      ),
    ),
  ),
  HttpRouter.route(
    "GET",
    "/status.json",
    Ops.use((ops) => ops.status).pipe(
      Effect.map((status) => HttpServerResponse.jsonUnsafe(status, { headers: noStore })),
    ),
  ),
  HttpRouter.route(
    "GET",
    "/",
    HttpServerResponse.text(StatusPage.html, {
      contentType: "text/html; charset=utf-8",
      headers: { ...noStore, "content-security-policy": StatusPage.contentSecurityPolicy },
    }),
  ),
])
