/**
 * The gateway's metrics, as Effect `Metric`s in a registry of their own, rendered for Prometheus by
 * `effect/observability`'s `PrometheusMetrics` (`GET /metrics`): requests by route, HTTP status, key, channel
 * and model; latency histograms by route, channel and model; dollars by key, channel and model; cache
 * answers (hit, miss, coalesced); errors by route and error; and each channel's circuit state, read from the
 * breakers' store when scraped.
 *
 * Updated synchronously from the gateway's events ({@link GatewayMetrics.record}), so a request never waits
 * for them. Label values are names (a key's name, never its secret).
 *
 * @since 0.1.0
 */
import { Context, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import type { GatewayEvent } from "../Events.ts"

/** Milliseconds: 5 ms to ~164 s, doubling. @category defaults */
export const latencyBoundaries = Metric.exponentialBoundaries({ start: 5, factor: 2, count: 16 })

/** A circuit's state as the gauge shows it. @category models */
export type CircuitState = "closed" | "half-open" | "open"

/** The gauge's value for each circuit state. @category models */
export const circuitValue: Record<CircuitState, number> = { closed: 0, "half-open": 1, open: 2 }

/** The metric definitions (unattributed). @category metrics */
export const definitions = {
  requests: Metric.counter("peel_gateway_requests_total", {
    description: "Requests answered, by route, HTTP status, key, channel and model",
  }),
  latency: Metric.histogram("peel_gateway_request_latency_ms", {
    description: "Latency of each answered request (ms), by route, channel and model",
    boundaries: latencyBoundaries,
    attributes: { unit: "ms" },
  }),
  costUsd: Metric.counter("peel_gateway_cost_usd_total", {
    description: "Dollars billed for answered requests, by key, channel and model",
  }),
  cache: Metric.counter("peel_gateway_cache_total", {
    description: "Requests by cache answer: hit (from the cache, $0), miss (generated), coalesced (shared a run)",
  }),
  errors: Metric.counter("peel_gateway_errors_total", { description: "Requests that failed, by route and error" }),
  attempts: Metric.counter("peel_gateway_attempts_total", {
    description: "Attempts the pipeline made for answered requests, by channel",
  }),
  circuit: Metric.gauge("peel_gateway_circuit_state", {
    description: "Each channel's circuit breaker: 0 closed, 1 half-open (a probe may go through), 2 open",
  }),
} as const

/** @category models */
export interface GatewayMetrics {
  /** Count one finished request. */
  readonly record: (event: GatewayEvent) => void
  /** Set a channel's circuit gauge. */
  readonly circuit: (channel: string, state: CircuitState) => void
  /** Every metric in the Prometheus text format. */
  readonly render: () => string
  readonly registry: Metric.MetricRegistry
}

/** What a label shows when the event has no value for it. @category defaults */
export const none = "none"

/**
 * Metrics in a fresh registry (or `registry`).
 *
 * @category constructors
 */
export const make = (registry: Metric.MetricRegistry = new Map()): GatewayMetrics => {
  const context = Context.make(Metric.MetricRegistry, registry) as Context.Context<never>
  const bump = <I>(metric: Metric.Metric<I, unknown>, attributes: Record<string, string>, value: I) =>
    Metric.withAttributes(metric, attributes).updateUnsafe(value, context)

  return {
    registry,
    record: (event) => {
      const channel = event.channel ?? none
      const model = event.model === undefined || event.model === "" ? none : event.model
      const key = event.keyName ?? none
      bump(definitions.requests, { route: event.route, status: String(event.status), key, channel, model }, 1)
      bump(definitions.latency, { route: event.route, channel, model }, event.latencyMs)
      if (event.costUsd > 0) bump(definitions.costUsd, { key, channel, model }, event.costUsd)
      if (event.status < 400 && event.cache !== "none") bump(definitions.cache, { result: event.cache }, 1)
      if (event.attempts > 0) bump(definitions.attempts, { channel }, event.attempts)
      if (event.error !== undefined) bump(definitions.errors, { route: event.route, error: event.error }, 1)
    },
    circuit: (channel, state) => bump(definitions.circuit, { channel }, circuitValue[state]),
    render: () => PrometheusMetrics.formatUnsafe(context),
  }
}
