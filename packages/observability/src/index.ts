/**
 * `@peel/observability`: the call log (Schema, kill-safe buffered writer, rotation), metrics (Effect
 * `Metric`), alerts over a sliding window, OTLP export (`effect/observability`), live progress, and the
 * summary behind `peel stats` and `peel report`. {@link Observe.make} wires them to a runner's observers.
 *
 * @since 0.1.0
 */

export * as Alerts from "./Alerts.ts"
export * as CallLog from "./CallLog.ts"
export * as Lines from "./Lines.ts"
export * as Metrics from "./Metrics.ts"
export * as Observe from "./Observe.ts"
export * as Progress from "./Progress.ts"
export * as Report from "./Report.ts"
export * as Stats from "./Stats.ts"
export * as Summary from "./Summary.ts"
export * as Telemetry from "./Telemetry.ts"
export * as Writer from "./Writer.ts"
