/**
 * The simulator: one real HTTP server (node:http) that speaks every upstream Peel talks to — Gemini API
 * `generateContent` (and a proxy's Bearer-auth flavour of it), Vertex AI (project and express mode),
 * OpenRouter and OpenAI-compatible proxy chat completions, and the Gemini Batch + Files APIs — with
 * faults on demand (per route, per model), per-key RPM limits, long-tail latency and advertised retry
 * delays on a time scale, and a billing ledger.
 *
 * ```ts
 * const sim = await Simulator.start({ port: 0 })
 * sim.script("gemini", ["429", "ok"])
 * sim.script("*", ["503", "503"], { model: "gemini-3-pro-image" })
 * // ... point an SDK at sim.url ...
 * sim.ledger().totals   // { calls, billedImages, billedUsd }
 * await sim.stop()
 * ```
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Pricing } from "@peel/contract"
import { Context, Effect, Layer } from "effect"
import { type BatchOptions, BatchService } from "./Batch.ts"
import { type Answer, type Exchange, type ImageAsk, json } from "./Exchange.ts"
import { type FaultKind, FaultPlan, type FaultRule, faultRules, type RouteName, type ScriptScope } from "./Faults.ts"
import { type Latency, parseLatency, sampleLatency } from "./Latency.ts"
import { Ledger, type LedgerJson } from "./Ledger.ts"
import { makeRandom } from "./Random.ts"
import * as Gemini from "./routes/gemini.ts"
import * as OpenAi from "./routes/openai.ts"

export type { FaultKind, FaultRule, RouteName, ScriptScope } from "./Faults.ts"
export { faultKinds, parseFaults, routeNames } from "./Faults.ts"
export type { Latency } from "./Latency.ts"
export { parseLatency } from "./Latency.ts"
export type { LedgerBill, LedgerCall, LedgerJson } from "./Ledger.ts"

/** How to start a simulator. Strings are parsed exactly as `peel simulate` flags are. */
export interface Options {
  readonly host?: string
  readonly port?: number
  /** Seed for faults and latency draws. */
  readonly seed?: number
  /** `0` (default), `200ms`, or `lognormal:median=8s,p99=30s`. */
  readonly latency?: string | Latency
  /**
   * Multiplies every simulated delay (0.01 makes a 20 s generation take 200 ms), the retry delays the
   * simulator advertises (`RetryInfo.retryDelay`, `Retry-After`) and the `rpm` window. Default 1.
   */
  readonly timeScale?: number
  /**
   * `429=0.2,503=0.05,hang=0.01`, each entry `[route:]kind[@model]=probability` (`openrouter:402=0.1`,
   * `503@gemini-3-pro-image=1`), or parsed rules.
   */
  readonly faults?: string | ReadonlyArray<FaultRule>
  /**
   * Requests per minute allowed per key (per route family); beyond it a 429 in the upstream's shape whose
   * retry delay is the time until the (scaled) one-minute window frees a slot.
   */
  readonly rpm?: number
  /** Batch job schedule. */
  readonly batch?: BatchOptions
  /**
   * Grow every PNG answer to at least this many bytes (a `tEXt` comment; pixels unchanged), so benchmarks
   * move what a real model answers (1–3 MB per 2K–4K image). Default 0: the flat images as they are.
   */
  readonly imageBytes?: number
  /** Ledger entries kept per list (calls, billed); totals stay exact. Default 10,000. */
  readonly ledgerLimit?: number
  /**
   * Milliseconds since the epoch, read for the `rpm` windows and the batch schedule (default `Date.now`).
   * Tests pass their own to move the simulator's time without waiting for it.
   */
  readonly clock?: () => number
}

/** One request the simulator received (in-process only; never served over HTTP: it holds credentials). */
export interface RecordedRequest {
  readonly route: RouteName
  readonly method: string
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  readonly headers: Readonly<Record<string, string>>
  readonly body: unknown
}

/** A running simulator. */
export interface Handle {
  /** `http://HOST:PORT`, no trailing slash. */
  readonly url: string
  readonly port: number
  /**
   * Queue the next answers on `route` (`*`: whichever route is called next); with `{ model }`, only calls
   * for that model take them (`sim.script("*", ["503"], { model: "gemini-3-pro-image" })`).
   */
  readonly script: (route: RouteName | "*", faults: ReadonlyArray<FaultKind>, scope?: ScriptScope) => void
  /** Replace the probabilistic fault rules (a `--faults` spec or parsed rules); `reset` restores the initial ones. */
  readonly setFaults: (faults: string | ReadonlyArray<FaultRule>) => void
  readonly ledger: () => LedgerJson
  readonly requests: () => ReadonlyArray<RecordedRequest>
  /** Clear the ledger, recorded requests, scripts, rate-limit windows and batch jobs; restore the initial fault rules. */
  readonly reset: () => void
  readonly stop: () => Promise<void>
}

const maxRecorded = 5_000

const headerMap = (request: IncomingMessage): Record<string, string> =>
  Object.fromEntries(
    Object.entries(request.headers).map(([name, value]) => [
      name.toLowerCase(),
      Array.isArray(value) ? value.join(", ") : (value ?? ""),
    ]),
  )

const readBody = (request: IncomingMessage, limit: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        reject(new Error("body too large"))
        request.destroy()
        return
      }
      chunks.push(chunk)
    })
    request.on("end", () => resolve(Buffer.concat(chunks)))
    request.on("error", reject)
  })

const bearerOf = (headers: Record<string, string>): string | undefined => {
  const match = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? "")
  return match?.[1]?.trim()
}

const shortHash = (text: string): string => createHash("sha256").update(text).digest("hex").slice(0, 12)

interface Matched {
  readonly route: RouteName
  readonly kind: "generate" | "batch"
  readonly model?: string
  readonly stream?: boolean
  readonly credential: string | undefined
}

/** Start a simulator. Resolves once it is listening. */
export const start = async (options: Options = {}): Promise<Handle> => {
  const random = makeRandom(options.seed ?? 1)
  const latency =
    typeof options.latency === "string"
      ? parseLatency(options.latency)
      : (options.latency ?? { _tag: "Fixed", millis: 0 })
  const rules = faultRules(options.faults)
  const timeScale = options.timeScale ?? 1
  const imageBytes = options.imageBytes ?? 0
  if (!(imageBytes >= 0)) throw new Error(`image bytes must be a non-negative number, got ${imageBytes}`)
  if (!(timeScale >= 0)) throw new Error(`time scale must be a non-negative number, got ${timeScale}`)
  const plan = new FaultPlan(rules, random)
  const ledger = new Ledger(options.ledgerLimit)
  let recorded: Array<RecordedRequest> = []
  let windows = new Map<string, Array<number>>()
  const open = new Set<ServerResponse>()
  const clock = options.clock ?? (() => performance.timeOrigin + performance.now())
  const batch = new BatchService({
    ledger,
    timeScale,
    clock,
    ...(options.batch === undefined ? {} : { schedule: options.batch }),
  })

  /**
   * Count a call against its key's sliding one-minute window (scaled). `undefined` when it is allowed;
   * otherwise the whole milliseconds until the oldest call in the window leaves it and frees a slot.
   */
  const overLimit = (family: string, credential: string | undefined): number | undefined => {
    if (options.rpm === undefined || credential === undefined) return undefined
    const key = `${family}:${shortHash(credential)}`
    const now = clock()
    const windowMillis = 60_000 * (timeScale === 0 ? 1 : timeScale)
    const recent = (windows.get(key) ?? []).filter((time) => now - time < windowMillis)
    if (recent.length >= options.rpm) {
      windows.set(key, recent)
      return Math.max(1, Math.ceil(recent[recent.length - options.rpm]! + windowMillis - now))
    }
    recent.push(now)
    windows.set(key, recent)
    return undefined
  }

  const match = (
    method: string,
    path: string,
    headers: Record<string, string>,
    query: Record<string, string>,
  ): Matched | undefined => {
    const key = headers["x-goog-api-key"] ?? query.key
    const bearer = bearerOf(headers)
    let found = /^\/(v1|v1beta)\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(path)
    if (method === "POST" && found !== null) {
      const route = key === undefined && bearer !== undefined ? "proxy-gemini" : "gemini"
      return {
        route,
        kind: "generate",
        model: found[2]!,
        stream: found[3] === "streamGenerateContent",
        credential: key ?? bearer,
      }
    }
    found =
      /^\/(v1|v1beta1)\/projects\/[^/]+\/locations\/[^/]+\/publishers\/google\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(
        path,
      )
    if (method === "POST" && found !== null)
      return {
        route: "vertex",
        kind: "generate",
        model: found[2]!,
        stream: found[3] === "streamGenerateContent",
        credential: bearer,
      }
    found = /^\/(v1|v1beta1)\/publishers\/google\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(path)
    if (method === "POST" && found !== null)
      return {
        route: "vertex-express",
        kind: "generate",
        model: found[2]!,
        stream: found[3] === "streamGenerateContent",
        credential: key,
      }
    if (method === "POST" && path === "/api/v1/chat/completions")
      return { route: "openrouter", kind: "generate", credential: bearer }
    if (method === "POST" && path === "/v1/chat/completions")
      return { route: "proxy-chat", kind: "generate", credential: bearer }
    const batchRoute = batch.match(method, path)
    if (batchRoute !== undefined) return { route: batchRoute, kind: "batch", credential: key ?? bearer }
    return undefined
  }

  const send = (response: ServerResponse, answer: Answer): void => {
    if (response.destroyed || response.writableEnded) return
    response.writeHead(answer.status, {
      ...(answer.contentType === undefined ? {} : { "content-type": answer.contentType }),
      ...(answer.headers ?? {}),
    })
    response.end(answer.body)
  }

  /** Wait `millis` (already scaled) or until the client goes away; true when it went away. */
  const wait = (response: ServerResponse, millis: number | undefined): Promise<boolean> =>
    new Promise((resolve) => {
      if (response.destroyed) return resolve(true)
      const onClose = () => {
        clearTimeout(timer)
        resolve(true)
      }
      const timer =
        millis === undefined
          ? undefined
          : setTimeout(() => {
              response.off("close", onClose)
              resolve(false)
            }, millis)
      response.once("close", onClose)
    })

  const generate = async (matched: Matched, exchange: Exchange, response: ServerResponse): Promise<void> => {
    const started = performance.now()
    const geminiShaped = matched.route !== "openrouter" && matched.route !== "proxy-chat"
    const flavour = matched.route === "openrouter" ? "openrouter" : "proxy-chat"
    const ask: ImageAsk | Answer = geminiShaped
      ? Gemini.parseAsk(matched.model!, exchange.body)
      : OpenAi.parseAsk(flavour, exchange.body)
    const parsed = "prompt" in ask
    const call = ledger.open({
      route: matched.route,
      model: parsed
        ? ask.model
        : (matched.model ?? String((exchange.body as { model?: unknown } | undefined)?.model ?? "")),
      size: parsed ? ask.size : "",
      aspectRatio: parsed ? ask.aspectRatio : "",
      ...(parsed && (ask.images ?? 0) > 0 ? { referenceImages: ask.images } : {}),
      ...(parsed && ask.seed !== undefined ? { seed: ask.seed } : {}),
    })
    const finish = (status: number, outcome: string, wentAway: boolean) => {
      call.status = status
      call.outcome = outcome
      call.clientWentAway = wentAway
      call.latencyMs = Math.round((performance.now() - started) * 100) / 100
    }
    if (matched.credential === undefined) {
      const denied = geminiShaped
        ? matched.route === "vertex"
          ? Gemini.googleError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.")
          : Gemini.unauthenticated()
        : OpenAi.unauthenticated()
      finish(denied.status, "unauthenticated", false)
      return send(response, denied)
    }
    if (!parsed) {
      finish(ask.status, "invalid", false)
      return send(response, ask)
    }
    const retryAfter = overLimit(geminiShaped ? "google" : matched.route, matched.credential)
    if (retryAfter !== undefined) {
      const limited = geminiShaped ? Gemini.rateLimited(false, retryAfter) : OpenAi.rateLimited(retryAfter)
      finish(429, "rate-limited", false)
      return send(response, limited)
    }
    const fault = plan.next(matched.route, ask.model)
    const answer = geminiShaped
      ? Gemini.answer(ask, fault, matched.stream === true, matched.credential, timeScale, imageBytes)
      : OpenAi.answer(flavour, ask, fault, matched.credential, timeScale, imageBytes)
    const delay = (sampleLatency(latency, random) + (answer.delayMillis ?? 0)) * timeScale
    const wentAway = await wait(response, answer.hang === true ? undefined : delay)
    if (wentAway) return finish(0, fault, true)
    send(response, answer)
    finish(answer.status, fault, false)
    const billable = geminiShaped ? Gemini.billable(fault) : OpenAi.billable(fault)
    if (!billable) return
    if (matched.route === "proxy-gemini" || matched.route === "proxy-chat")
      ledger.bill(call, OpenAi.proxyFlatPrice, "flat")
    else if (matched.route === "openrouter") ledger.bill(call, OpenAi.priceOf("openrouter", ask), "standard")
    else ledger.bill(call, Pricing.costFromUsage(ask.model, Gemini.usageOf(ask).usage), "standard")
  }

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    open.add(response)
    response.on("close", () => open.delete(response))
    const url = new URL(request.url ?? "/", "http://simulator")
    const path = url.pathname
    const method = request.method ?? "GET"
    const headers = headerMap(request)
    const query = Object.fromEntries(url.searchParams)
    if (path === "/_simulator/ledger" && method === "GET") return send(response, json(200, ledger.toJson()))
    if (path === "/_simulator/reset" && method === "POST") {
      reset()
      return send(response, json(200, { ok: true }))
    }
    if (path === "/_simulator/health") return send(response, json(200, { ok: true }))
    const matched = match(method, path, headers, query)
    const rawBody = await readBody(request, 2 * 1024 * 1024 * 1024).catch(() => Buffer.alloc(0))
    let body: unknown
    const contentType = headers["content-type"] ?? ""
    if (
      rawBody.length > 0 &&
      !contentType.startsWith("application/octet-stream") &&
      !contentType.startsWith("text/plain")
    ) {
      try {
        body = JSON.parse(rawBody.toString("utf8"))
      } catch {
        body = undefined
        if (matched?.kind === "generate") {
          const bad =
            matched.route === "openrouter" || matched.route === "proxy-chat"
              ? OpenAi.openAiError(400, "Invalid JSON body")
              : Gemini.googleError(400, "Invalid JSON payload received.")
          return send(response, bad)
        }
      }
    }
    if (matched === undefined) return send(response, Gemini.googleError(404, `Method not found: ${method} ${path}`))
    if (recorded.length >= maxRecorded) recorded = recorded.slice(-maxRecorded / 2)
    recorded.push({ route: matched.route, method, path, query, headers, body })
    const exchange: Exchange = {
      route: matched.route,
      method,
      path,
      query,
      headers,
      body,
      rawBody,
      credential: matched.credential,
    }
    if (matched.kind === "batch") return send(response, batch.handle(exchange, plan))
    return generate(matched, exchange, response)
  }

  const reset = () => {
    ledger.reset()
    recorded = []
    windows = new Map()
    plan.clear()
    plan.setRules(rules)
    batch.reset()
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      send(
        response,
        Gemini.googleError(500, `simulator error: ${error instanceof Error ? error.message : String(error)}`),
      )
    })
  })
  server.keepAliveTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve())
  })
  const address = server.address() as AddressInfo
  const host = options.host ?? "127.0.0.1"
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`
  return {
    url,
    port: address.port,
    script: (route, faults, scope) => plan.script(route, faults, scope),
    setFaults: (faults) => plan.setRules(faultRules(faults)),
    ledger: () => ledger.toJson(),
    requests: () => [...recorded],
    reset,
    stop: () =>
      new Promise<void>((resolve) => {
        batch.stop()
        for (const response of open) response.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** The simulator as an Effect service. */
export class Simulator extends Context.Service<Simulator, Handle>()("@peel/simulator/Simulator") {}

/** A scoped Layer: the simulator starts with the Layer and stops when its Scope closes. */
export const layer = (options: Options = {}): Layer.Layer<Simulator> =>
  Layer.effect(
    Simulator,
    Effect.acquireRelease(
      Effect.promise(() => start(options)),
      (handle) => Effect.promise(() => handle.stop()),
    ),
  )
