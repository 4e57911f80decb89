/**
 * Peel's metrics, as Effect `Metric`s in a registry of their own (so a run's numbers are its own, and the
 * OTLP exporter reads exactly these): latency histograms per channel and model (each call) and per
 * outcome (each request), counters of calls by outcome, errors by tag, dollars, cache hits, hedges,
 * fallbacks and placeholders, and breaker state as the journal shows it (`CircuitOpen` attempts).
 *
 * Updated synchronously from the runner's observer (`updateUnsafe` against the registry's context), so
 * the runner never waits for them.
 *
 * @since 0.1.0
 */
import type { Attempt, Runner } from "@peel/core"
import { Context, Effect, Metric } from "effect"
import { isCall } from "./Lines.ts"

/** Milliseconds: 50 ms to ~205 s, doubling. @category defaults */
export const latencyBoundaries = Metric.exponentialBoundaries({ start: 50, factor: 2, count: 14 })

/** The metric definitions (unattributed). @category metrics */
export const definitions = {
  attemptLatency: Metric.histogram("peel_attempt_latency_ms", {
    description: "Latency of each upstream call, by channel and model",
    boundaries: latencyBoundaries,
    attributes: { unit: "ms" },
  }),
  requestLatency: Metric.histogram("peel_request_latency_ms", {
    description: "Latency of each whole request, by outcome",
    boundaries: latencyBoundaries,
    attributes: { unit: "ms" },
  }),
  attempts: Metric.counter("peel_attempts_total", { description: "Attempts, by channel, model and outcome" }),
  errors: Metric.counter("peel_errors_total", { description: "Failed attempts, by error tag and channel" }),
  requests: Metric.counter("peel_requests_total", { description: "Requests, by outcome" }),
  costUsd: Metric.counter("peel_cost_usd_total", { description: "Dollars billed, by channel and model" }),
  cacheHits: Metric.counter("peel_cache_hits_total", { description: "Attempts answered from the cache" }),
  hedges: Metric.counter("peel_hedges_total", { description: "Attempts started by hedging" }),
  fallbacks: Metric.counter("peel_fallbacks_total", { description: "Attempts made by a fallback alternative" }),
  placeholders: Metric.counter("peel_placeholders_total", { description: "Requests answered with a placeholder" }),
  circuitRejections: Metric.counter("peel_circuit_rejections_total", {
    description: "Attempts refused because the channel's circuit was open (no call made)",
  }),
  circuitOpen: Metric.gauge("peel_circuit_open", {
    description:
      "1 while the channel's circuit refuses calls (its last attempt was CircuitOpen), 0 once a call goes through",
  }),
} as const

/** @category models */
export interface Metrics {
  /** The registry's context: provide it (`Effect.provideContext`) to read these metrics or export them. */
  readonly context: Context.Context<never>
  readonly registry: Metric.MetricRegistry
  readonly observer: Runner.Observer
  /** Every metric's current state. */
  readonly snapshot: () => ReadonlyArray<Metric.Metric.Snapshot>
}

/**
 * Metrics in a fresh registry (or `registry`), and the observer that updates them.
 *
 * @category constructors
 */
export const make = (registry: Metric.MetricRegistry = new Map()): Metrics => {
  const context = Context.make(Metric.MetricRegistry, registry) as Context.Context<never>
  const bump = <I>(metric: Metric.Metric<I, unknown>, attributes: Record<string, string>, value: I) =>
    Metric.withAttributes(metric, attributes).updateUnsafe(value, context)

  const attempt = (attempt: Attempt.Attempt) => {
    const where = { channel: attempt.channel, model: attempt.model }
    bump(definitions.attempts, { ...where, outcome: attempt.outcome }, 1)
    if (attempt.cached === true) bump(definitions.cacheHits, where, 1)
    if (attempt.outcome === "CircuitOpen") {
      bump(definitions.circuitRejections, { channel: attempt.channel }, 1)
      bump(definitions.circuitOpen, { channel: attempt.channel }, 1)
    }
    if (!isCall(attempt)) return
    bump(definitions.circuitOpen, { channel: attempt.channel }, 0)
    bump(definitions.attemptLatency, where, attempt.latencyMs)
    if (attempt.outcome !== "ok") bump(definitions.errors, { error: attempt.outcome, channel: attempt.channel }, 1)
    if (attempt.costUsd > 0) bump(definitions.costUsd, where, attempt.costUsd)
    if (attempt.hedge === true) bump(definitions.hedges, where, 1)
    if (attempt.fallback === true) bump(definitions.fallbacks, where, 1)
  }

  const observer: Runner.Observer = {
    attempt: (_request, record) => attempt(record),
    done: (_plan, outcome) => {
      if (outcome._tag === "Done") {
        bump(definitions.requests, { outcome: "ok" }, 1)
        bump(definitions.requestLatency, { outcome: "ok" }, outcome.result.latencyMs)
        if (outcome.result.placeholder) bump(definitions.placeholders, {}, 1)
      } else {
        const tag = outcome.failure.error._tag
        bump(definitions.requests, { outcome: tag }, 1)
        bump(definitions.requestLatency, { outcome: tag }, outcome.failure.latencyMs)
      }
    },
  }

  return {
    context,
    registry,
    observer,
    snapshot: () => Effect.runSync(Effect.provideContext(Metric.snapshot, context)),
  }
}
