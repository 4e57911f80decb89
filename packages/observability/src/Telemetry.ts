/**
 * OpenTelemetry export over OTLP/HTTP (JSON), with Effect's own `effect/observability` modules
 * (`OtlpTracer`, `OtlpMetrics`). Only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`) is set and `OTEL_SDK_DISABLED` is not
 * `true`; nothing is exported otherwise. `OTEL_SERVICE_NAME` names the service (`peel` by default).
 *
 * Traces: a span per request (`peel.request`) and a child span per attempt (`peel.attempt`), made when the
 * request ends from the journal's records, with their real start and end times; attributes `peel.channel`,
 * `peel.model`, `peel.size`, `peel.outcome`, `peel.cost_usd`, `http.response.status_code`, ... Metrics:
 * the {@link Metrics} registry, exported every few seconds.
 *
 * An unreachable or hanging collector never fails a run and never slows a request: spans are buffered and
 * sent by a background fiber; the exporter gives up on a collector that fails (and stays quiet for 60 s);
 * the last export at shutdown waits at most `shutdownTimeout` (500 ms by default, per signal: ~1 s for traces and metrics).
 *
 * @since 0.1.0
 */
import type { Attempt, Runner } from "@peel/core"
import { Context, Effect, Exit, Layer, Metric, Option, type Scope, type Tracer } from "effect"
import { FetchHttpClient } from "effect/http"
import { OtlpExporter, OtlpMetrics, OtlpSerialization, OtlpTracer } from "effect/observability"
import { isCall } from "./Lines.ts"
import type { Metrics } from "./Metrics.ts"

/** Where to export, read from the standard OTEL_* variables; undefined when nothing is to be exported. @category config */
export interface OtlpConfig {
  readonly tracesUrl: string
  readonly metricsUrl: string
  readonly serviceName: string
  readonly headers: Record<string, string>
}

const joinUrl = (base: string, path: string) => `${base.replace(/\/+$/, "")}${path}`

/** `a=b,c=d` (OTEL_EXPORTER_OTLP_HEADERS). */
const parseHeaders = (text: string | undefined): Record<string, string> =>
  Object.fromEntries(
    (text ?? "")
      .split(",")
      .map((pair) => pair.split("="))
      .filter((pair) => pair.length >= 2 && pair[0]!.trim() !== "")
      .map(([key, ...value]) => [key!.trim(), decodeURIComponent(value.join("=").trim())]),
  )

/** @category config */
export const configFromEnv = (env: Record<string, string | undefined>): OtlpConfig | undefined => {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === "true") return undefined
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()
  const metrics = env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT?.trim()
  if (!base && !traces && !metrics) return undefined
  return {
    tracesUrl: traces || joinUrl(base || "http://localhost:4318", "/v1/traces"),
    metricsUrl: metrics || joinUrl(base || "http://localhost:4318", "/v1/metrics"),
    serviceName: env.OTEL_SERVICE_NAME?.trim() || "peel",
    headers: parseHeaders(env.OTEL_EXPORTER_OTLP_HEADERS),
  }
}

const nanos = (ms: number) => BigInt(Math.round(ms * 1000)) * 1000n

const exitOf = (outcome: string, message: string | undefined): Exit.Exit<unknown, unknown> =>
  outcome === "ok" ? Exit.void : Exit.fail(new Error(message === undefined ? outcome : `${outcome}: ${message}`))

const attemptAttributes = (attempt: Attempt.Attempt): Record<string, unknown> => ({
  "peel.channel": attempt.channel,
  "peel.model": attempt.model,
  "peel.size": attempt.size,
  "peel.outcome": attempt.outcome,
  "peel.cost_usd": attempt.costUsd,
  "peel.latency_ms": attempt.latencyMs,
  "peel.call": isCall(attempt),
  ...(attempt.status === undefined ? {} : { "http.response.status_code": attempt.status }),
  ...(attempt.try === undefined ? {} : { "peel.try": attempt.try }),
  ...(attempt.hedge === true ? { "peel.hedge": true } : {}),
  ...(attempt.fallback === true ? { "peel.fallback": true } : {}),
  ...(attempt.cached === true ? { "peel.cached": true } : {}),
  ...(attempt.usage?.inputTokens === undefined ? {} : { "peel.tokens.input": attempt.usage.inputTokens }),
  ...(attempt.usage?.outputImageTokens === undefined
    ? {}
    : { "peel.tokens.output_image": attempt.usage.outputImageTokens }),
})

/**
 * Turn each finished request into spans on `tracer`: the request's span, and one child per attempt.
 *
 * @category constructors
 */
export const spanObserver = (tracer: Tracer.Tracer, runId: string, now: () => number = Date.now): Runner.Observer => ({
  done: (plan, outcome) => {
    const attempts = outcome._tag === "Done" ? outcome.result.attempts : outcome.failure.attempts
    const latencyMs = outcome._tag === "Done" ? outcome.result.latencyMs : outcome.failure.latencyMs
    // The request's span holds its attempts' spans, whatever the clocks' rounding.
    const end = Math.max(now(), ...attempts.map((attempt) => attempt.startedAt + attempt.latencyMs))
    const start = Math.min(end - latencyMs, ...attempts.map((attempt) => attempt.startedAt))
    const span = tracer.span({
      name: "peel.request",
      parent: Option.none(),
      annotations: Context.empty(),
      links: [],
      startTime: nanos(start),
      kind: "internal",
      root: true,
      sampled: true,
    })
    const result = outcome._tag === "Done" ? outcome.result : undefined
    const attributes: Record<string, unknown> = {
      "peel.run_id": runId,
      "peel.request.id": outcome._tag === "Done" ? outcome.result.id : outcome.failure.id,
      "peel.outcome": outcome._tag === "Done" ? "ok" : outcome.failure.error._tag,
      "peel.cost_usd": outcome._tag === "Done" ? outcome.result.costUsd : outcome.failure.costUsd,
      "peel.latency_ms": latencyMs,
      "peel.attempts": attempts.length,
      ...(plan === undefined ? {} : { "peel.prompt_hash": plan.promptHash, "peel.aspect_ratio": plan.aspectRatio }),
      ...(result === undefined
        ? plan === undefined
          ? {}
          : { "peel.model": plan.model, "peel.size": plan.size }
        : {
            "peel.channel": result.channel,
            "peel.model": result.model,
            "peel.size": result.size,
            "peel.cached": result.cached,
            "peel.placeholder": result.placeholder,
          }),
    }
    for (const [key, value] of Object.entries(attributes)) span.attribute(key, value)
    for (const attempt of attempts) {
      const child = tracer.span({
        name: "peel.attempt",
        parent: Option.some(span),
        annotations: Context.empty(),
        links: [],
        startTime: nanos(attempt.startedAt),
        kind: "client",
        root: false,
        sampled: true,
      })
      for (const [key, value] of Object.entries(attemptAttributes(attempt))) child.attribute(key, value)
      child.end(nanos(attempt.startedAt + attempt.latencyMs), exitOf(attempt.outcome, attempt.message))
    }
    span.end(
      nanos(end),
      outcome._tag === "Done" ? Exit.void : exitOf(outcome.failure.error._tag, outcome.failure.error.message),
    )
  },
})

/** @category models */
export interface TelemetryOptions {
  readonly env: Record<string, string | undefined>
  readonly runId: string
  /** Export these metrics too. */
  readonly metrics?: Metrics
  readonly exportIntervalMs?: number
  readonly shutdownTimeoutMs?: number
}

/**
 * Start OTLP export for the lifetime of the current Scope (when the environment asks for it): the observer
 * that makes spans, or undefined when nothing is exported.
 *
 * @category constructors
 */
export const fromEnv = (
  options: TelemetryOptions,
): Effect.Effect<{ readonly observer: Runner.Observer; readonly config: OtlpConfig } | undefined, never, Scope.Scope> =>
  Effect.gen(function* () {
    const config = configFromEnv(options.env)
    if (config === undefined) return undefined
    const resource = { serviceName: config.serviceName, attributes: { "peel.run_id": options.runId } }
    const timing = {
      exportInterval: options.exportIntervalMs ?? 2_000,
      shutdownTimeout: options.shutdownTimeoutMs ?? 500,
    }
    const tracer = yield* OtlpTracer.make({ url: config.tracesUrl, resource, headers: config.headers, ...timing })
    if (options.metrics !== undefined)
      yield* OtlpMetrics.make({ url: config.metricsUrl, resource, headers: config.headers, ...timing }).pipe(
        Effect.provideService(Metric.MetricRegistry, options.metrics.registry),
      )
    return { observer: spanObserver(tracer, options.runId), config }
  }).pipe(Effect.provide(Layer.mergeAll(OtlpExporter.layerFlusher, OtlpSerialization.layerJson, FetchHttpClient.layer)))
