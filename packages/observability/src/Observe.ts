/**
 * Everything a run observes, in one Scope: the call log (when a file is given), metrics, alerts (written to
 * the call log and printed on stderr as they fire and clear) and OTLP export (when the environment asks
 * for it). Hand `observers` to `Runner.make`; closing the Scope writes the run's end line, flushes the
 * call log and the last telemetry.
 *
 * ```ts
 * const observed = yield* Observe.make({ callLog: "calls.jsonl", pipeline: file, requests: 100 })
 * const runner = yield* Runner.make(pipeline, { observers: observed.observers })
 * ```
 *
 * @since 0.1.0
 */
import { randomUUID } from "node:crypto"
import type { Runner } from "@peel/core"
import { Effect, type Scope } from "effect"
import * as Alerts from "./Alerts.ts"
import type { AlertLine } from "./CallLog.ts"
import { attemptLine, isCall, requestLine } from "./Lines.ts"
import * as Metrics from "./Metrics.ts"
import * as Telemetry from "./Telemetry.ts"
import * as Writer from "./Writer.ts"

/** @category models */
export interface ObserveOptions {
  /** Write the call log here (appended to; rotated by size). */
  readonly callLog?: string | undefined
  /** Writer settings beyond the path (rotation size, flush interval). */
  readonly writer?: Omit<Writer.WriterOptions, "path">
  /** Alert thresholds and window; `false` turns alerts off. */
  readonly alerts?: Alerts.AlertOptions | false
  /** Where alerts are printed as they fire and clear; stderr by default, `false` for nowhere. */
  readonly onAlert?: ((event: Alerts.AlertEvent) => void) | false
  /** For OTLP export (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`); `process.env` by default. */
  readonly env?: Record<string, string | undefined>
  readonly runId?: string
  readonly pipeline?: string
  readonly requests?: number
  readonly now?: () => number
}

/** @category models */
export interface Observed {
  readonly runId: string
  readonly observers: ReadonlyArray<Runner.Observer>
  readonly metrics: Metrics.Metrics
  readonly alerts: Alerts.Alerts | undefined
  readonly writer: Writer.Writer | undefined
  readonly telemetry: Telemetry.OtlpConfig | undefined
  /** Say how the run ended (written as the run's end line when the Scope closes). */
  readonly end: (status: string) => void
  /** Hear attempts and requests from now on too (one made after the runner, such as live progress). */
  readonly add: (observer: Runner.Observer) => void
}

/** A short, sortable run id: UTC time and 6 random hex digits. @category ids */
export const makeRunId = (now: number = Date.now()): string =>
  `${new Date(now)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}-${randomUUID().slice(0, 6)}`

/** How an alert is printed on stderr. @category utils */
export const formatAlert = (event: Alerts.AlertEvent): string =>
  `peel: alert ${event.state === "firing" ? "FIRING" : "cleared"}: ${event.message}`

/**
 * Set up observation for one run in the current Scope. Fails only when the call log cannot be opened (so
 * a caller can refuse before anything is spent).
 *
 * @category constructors
 */
export const make = (options: ObserveOptions = {}): Effect.Effect<Observed, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const now = options.now ?? Date.now
    const runId = options.runId ?? makeRunId(now())
    const writer =
      options.callLog === undefined ? undefined : yield* Writer.scoped({ ...options.writer, path: options.callLog })
    let status: string | undefined
    if (writer !== undefined) {
      writer.write({
        type: "run",
        time: new Date(now()).toISOString(),
        runId,
        event: "start",
        ...(options.pipeline === undefined ? {} : { pipeline: options.pipeline }),
        ...(options.requests === undefined ? {} : { requests: options.requests }),
      })
      // Runs before the writer's own finalizer (finalizers run in reverse order): the end line is flushed.
      yield* Effect.addFinalizer(() =>
        Effect.sync(() =>
          writer.write({
            type: "run",
            time: new Date(now()).toISOString(),
            runId,
            event: "end",
            ...(status === undefined ? {} : { status }),
          }),
        ),
      )
    }
    const print =
      options.onAlert === false
        ? () => {}
        : (options.onAlert ?? ((event: Alerts.AlertEvent) => process.stderr.write(`${formatAlert(event)}\n`)))
    const alerts =
      options.alerts === false
        ? undefined
        : Alerts.make(options.alerts ?? {}, (event) => {
            const line: AlertLine = {
              type: "alert",
              time: new Date(event.at).toISOString(),
              runId,
              alert: event.alert,
              scope: event.scope,
              state: event.state,
              value: event.value,
              threshold: event.threshold,
              samples: event.samples,
              windowMs: event.windowMs,
              message: event.message,
            }
            writer?.write(line)
            print(event)
          })
    const metrics = Metrics.make()
    const logObserver: Runner.Observer = {
      attempt: (request, attempt) => {
        writer?.write(attemptLine(runId, request, attempt, now()))
        if (isCall(attempt))
          alerts?.attempt(
            attempt.channel,
            Alerts.classify(attempt.outcome, attempt.cached),
            attempt.latencyMs,
            attempt.startedAt + attempt.latencyMs,
          )
      },
      done: (plan, outcome) => {
        const at = now()
        writer?.write(requestLine(runId, plan, outcome, at))
        alerts?.request(
          outcome._tag === "Failed",
          outcome._tag === "Done" ? outcome.result.latencyMs : outcome.failure.latencyMs,
          at,
        )
      },
    }
    const telemetry = yield* Telemetry.fromEnv({ env: options.env ?? process.env, runId, metrics })
    const late: Array<Runner.Observer> = []
    const lateObserver: Runner.Observer = {
      attempt: (request, attempt) => {
        for (const observer of late) observer.attempt?.(request, attempt)
      },
      done: (plan, outcome) => {
        for (const observer of late) observer.done?.(plan, outcome)
      },
    }
    return {
      runId,
      observers: [
        logObserver,
        metrics.observer,
        ...(telemetry === undefined ? [] : [telemetry.observer]),
        lateObserver,
      ],
      metrics,
      alerts,
      writer,
      telemetry: telemetry?.config,
      end: (ended: string) => {
        status = ended
      },
      add: (observer) => {
        late.push(observer)
      },
    }
  })
