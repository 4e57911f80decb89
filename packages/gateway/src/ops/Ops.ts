/**
 * The gateway's operations view as a service: it hears every {@link GatewayEvent} (one per request, from
 * `Events`), keeps the Prometheus metrics ({@link GatewayMetrics}) and the status tracker ({@link Status}),
 * and reads each channel's circuit breaker and statistics from the pipeline's state (the same stores the
 * runner decides with) when `/metrics` or `/status.json` is asked for.
 *
 * @since 0.1.0
 */
import { type Runner, State } from "@peel/core"
import { Clock, Context, Duration, Effect, Layer } from "effect"
import type { CircuitBreaker } from "effect/persistence"
import { GatewayEvents } from "../Events.ts"
import * as GatewayMetrics from "./Metrics.ts"
import * as Status from "./Status.ts"

/** @category models */
export interface OpsShape {
  /** Every metric, in the Prometheus text format (circuit gauges read now). */
  readonly metrics: Effect.Effect<string>
  /** The status page's data, now. */
  readonly status: Effect.Effect<Status.Status>
}

/** @category services */
export class Ops extends Context.Service<Ops, OpsShape>()("@peel/gateway/Ops") {}

const circuitOf = (state: CircuitBreaker.State) =>
  state._tag === "Open"
    ? { breaker: "open" as const, reopensInMs: Duration.toMillis(state.retryAfter) }
    : { breaker: state._tag === "HalfOpen" ? ("half-open" as const) : ("closed" as const) }

/**
 * The view of a runner's pipeline (its channels listed before their first request; its state's breakers
 * and statistics read when asked): subscribes to the gateway's events before it is provided (no request is
 * missed) and keeps listening for the life of the Layer.
 *
 * @category layers
 */
export const layer = (runner: Runner.RunnerShape): Layer.Layer<Ops, never, GatewayEvents> =>
  Layer.effect(
    Ops,
    Effect.gen(function* () {
      const breakers = Context.get(runner.state, State.Breakers.Breakers)
      const stats = Context.get(runner.state, State.ChannelStats.ChannelStats)
      const channels = [...runner.channels.keys()]
      const events = yield* GatewayEvents
      const metrics = GatewayMetrics.make()
      const tracker = Status.make({
        pipeline: runner.pipeline.name,
        channels,
        startedAt: yield* Clock.currentTimeMillis,
      })
      yield* events.listen((event) => {
        metrics.record(event)
        tracker.record(event)
      })

      const views = Effect.forEach(
        channels,
        (channel) =>
          Effect.all({
            circuit: breakers.state(State.Breakers.circuitKey(channel)).pipe(
              Effect.map(circuitOf),
              // A store that cannot answer (a network store down) shows the circuit as the runner treats it.
              Effect.orElseSucceed(() => ({ breaker: "closed" as const })),
            ),
            upstream: stats.summary(State.ChannelStats.keyOf(channel)),
          }).pipe(
            Effect.map(({ circuit, upstream }) => [channel, { ...circuit, upstream }] as [string, Status.ChannelView]),
          ),
        { concurrency: "unbounded" },
      ).pipe(Effect.map((entries) => new Map(entries)))

      return Ops.of({
        metrics: Effect.map(views, (byChannel) => {
          for (const [channel, view] of byChannel) metrics.circuit(channel, view.breaker)
          return metrics.render()
        }),
        status: Effect.zipWith(Clock.currentTimeMillis, views, (now, byChannel) => tracker.status(now, byChannel)),
      })
    }),
  )
