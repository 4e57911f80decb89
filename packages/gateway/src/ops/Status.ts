/**
 * What the status page shows, as a Schema ({@link Status}, answered at `GET /status.json`), and the
 * tracker that keeps it from the gateway's events: spend today (UTC) per key and per channel, requests and
 * errors, p50/p99 of the gateway's answers overall and per channel, each channel's health and circuit
 * breaker state (read from the state's breakers store and channel statistics when asked), the most recent
 * errors, and alerts (`@peel/observability`'s sliding-window alerts: request failure rate, a channel's
 * failure rate, p99 latency).
 *
 * Kept in the gateway's memory: "today" is what this process answered since the last UTC midnight.
 * Nothing here holds a prompt or a key's secret: keys appear by name.
 *
 * @since 0.1.0
 */
import { Alerts } from "@peel/observability"
import { Schema } from "effect"
import type { GatewayEvent } from "../Events.ts"
import type { CircuitState } from "./Metrics.ts"

/** @category schemas */
export const CircuitStateSchema = Schema.Literals(["closed", "half-open", "open"])

/** @category schemas */
export const Health = Schema.Literals(["idle", "ok", "degraded", "down"])
/** @category models */
export type Health = typeof Health.Type

/** Latency percentiles (ms) over the last answers; null before the first. @category schemas */
export const Percentiles = Schema.Struct({
  samples: Schema.Number,
  p50Ms: Schema.NullOr(Schema.Number),
  p99Ms: Schema.NullOr(Schema.Number),
})

/** One channel of the pipeline. @category schemas */
export const ChannelStatus = Schema.Struct({
  name: Schema.String,
  /** idle (no call yet), ok, degraded (circuit half-open or failure rate over the alert threshold), down (circuit open). */
  health: Health,
  breaker: CircuitStateSchema,
  /** While open: milliseconds until a probe may go through. */
  reopensInMs: Schema.optional(Schema.Number),
  /** Requests this channel answered or failed last. */
  requests: Schema.Number,
  /** Of them, answered 5xx. */
  errors: Schema.Number,
  spendTodayUsd: Schema.Number,
  /** Whole answers through this channel, as the gateway's clients saw them. */
  latency: Percentiles,
  /** Upstream calls, from the state's channel statistics (what hedging and adaptive timeouts read). */
  upstream: Schema.NullOr(
    Schema.Struct({
      calls: Schema.Number,
      averageMs: Schema.Number,
      p50Ms: Schema.NullOr(Schema.Number),
      p99Ms: Schema.NullOr(Schema.Number),
    }),
  ),
})
/** @category models */
export type ChannelStatus = typeof ChannelStatus.Type

/** One virtual key (by name; "anonymous" when the gateway is open). @category schemas */
export const KeyStatus = Schema.Struct({
  name: Schema.String,
  requests: Schema.Number,
  /** Of them, not answered with an image (4xx and 5xx: its rate limit and budget refusals count). */
  errors: Schema.Number,
  spendTodayUsd: Schema.Number,
})
/** @category models */
export type KeyStatus = typeof KeyStatus.Type

/** A request that was not answered with an image. @category schemas */
export const ErrorEntry = Schema.Struct({
  at: Schema.String,
  requestId: Schema.String,
  route: Schema.String,
  status: Schema.Number,
  error: Schema.String,
  key: Schema.String,
  model: Schema.String,
  channel: Schema.optional(Schema.String),
})
/** @category models */
export type ErrorEntry = typeof ErrorEntry.Type

/** An alert as it fired or cleared. @category schemas */
export const AlertEntry = Schema.Struct({
  at: Schema.String,
  alert: Schema.String,
  scope: Schema.String,
  state: Schema.Literals(["firing", "cleared"]),
  value: Schema.Number,
  threshold: Schema.Number,
  message: Schema.String,
})
/** @category models */
export type AlertEntry = typeof AlertEntry.Type

/** `GET /status.json`. @category schemas */
export const Status = Schema.Struct({
  generatedAt: Schema.String,
  startedAt: Schema.String,
  /** The UTC day "today" means (YYYY-MM-DD). */
  day: Schema.String,
  pipeline: Schema.String,
  totals: Schema.Struct({
    requests: Schema.Number,
    /** Requests not answered with an image (4xx and 5xx). */
    errors: Schema.Number,
    spendTodayUsd: Schema.Number,
    cacheHits: Schema.Number,
    cacheMisses: Schema.Number,
    latency: Percentiles,
  }),
  keys: Schema.Array(KeyStatus),
  channels: Schema.Array(ChannelStatus),
  /** Newest first. */
  recentErrors: Schema.Array(ErrorEntry),
  /** Alerts firing now. */
  firing: Schema.Array(AlertEntry),
  /** Alerts as they fired and cleared, newest first. */
  alerts: Schema.Array(AlertEntry),
})
/** @category models */
export type Status = typeof Status.Type

/** What the state says of a channel when the status is asked for. @category models */
export interface ChannelView {
  readonly breaker: CircuitState
  readonly reopensInMs?: number | undefined
  /** Channel statistics: calls observed, moving average, recent successful latencies. */
  readonly upstream?:
    | { readonly samples: number; readonly averageMs: number; readonly recent: ReadonlyArray<number> }
    | undefined
}

/** Latencies kept per scope for percentiles. @category defaults */
export const latenciesKept = 1_000
/** Recent errors kept. @category defaults */
export const errorsKept = 50
/** Alert events kept. @category defaults */
export const alertsKept = 50
/** The name an open gateway's caller is shown under. @category defaults */
export const anonymous = "anonymous"

/** Fixed-size ring of the last latencies. */
class Ring {
  private readonly values = new Float64Array(latenciesKept)
  private next = 0
  private size = 0
  push(value: number) {
    this.values[this.next] = value
    this.next = (this.next + 1) % latenciesKept
    if (this.size < latenciesKept) this.size++
  }
  percentiles(): typeof Percentiles.Type {
    if (this.size === 0) return { samples: 0, p50Ms: null, p99Ms: null }
    const sorted = this.values.slice(0, this.size).sort()
    return { samples: this.size, p50Ms: rank(sorted, 0.5), p99Ms: rank(sorted, 0.99) }
  }
}

/** Nearest-rank quantile of sorted values, rounded to 0.1 ms. */
const rank = (sorted: ArrayLike<number>, q: number): number => {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return Math.round(sorted[index]! * 10) / 10
}

interface Tally {
  requests: number
  errors: number
  spendUsd: number
  /** Latencies of its answered requests. */
  readonly latency: Ring
}

const money = (usd: number) => Math.round(usd * 1e6) / 1e6
const dayOf = (at: number) => new Date(at).toISOString().slice(0, 10)
const iso = (at: number) => new Date(at).toISOString()

/** @category models */
export interface Tracker {
  /** One finished request (it ended at `startedAt + latencyMs`). */
  readonly record: (event: GatewayEvent) => void
  /** The status at `now`, with what the state says of each channel. */
  readonly status: (now: number, views: ReadonlyMap<string, ChannelView>) => Status
}

/**
 * A tracker for a pipeline's channels (listed even before their first request).
 *
 * @category constructors
 */
export const make = (options: {
  readonly pipeline: string
  readonly channels: ReadonlyArray<string>
  readonly startedAt: number
  readonly alerts?: Alerts.AlertOptions | undefined
}): Tracker => {
  const tally = (): Tally => ({ requests: 0, errors: 0, spendUsd: 0, latency: new Ring() })
  const keys = new Map<string, Tally>()
  const channels = new Map<string, Tally>(options.channels.map((name) => [name, tally()]))
  const overall = tally()
  let cacheHits = 0
  let cacheMisses = 0
  let day = dayOf(options.startedAt)
  const errors: Array<ErrorEntry> = []
  const alertLog: Array<AlertEntry> = []
  const toEntry = (event: Alerts.AlertEvent): AlertEntry => ({
    at: iso(event.at),
    alert: event.alert,
    scope: event.scope,
    state: event.state,
    value: event.value,
    threshold: event.threshold,
    message: event.message,
  })
  const alerts = Alerts.make(options.alerts ?? {}, (event) => {
    alertLog.unshift(toEntry(event))
    if (alertLog.length > alertsKept) alertLog.pop()
  })
  const errorRate = options.alerts?.errorRate ?? Alerts.defaults.errorRate

  const rollOver = (at: number) => {
    const today = dayOf(at)
    if (today === day) return
    day = today
    overall.spendUsd = 0
    for (const entry of keys.values()) entry.spendUsd = 0
    for (const entry of channels.values()) entry.spendUsd = 0
  }

  const count = (entry: Tally, event: GatewayEvent, failed: boolean) => {
    entry.requests++
    if (failed) entry.errors++
    entry.spendUsd += event.costUsd
  }

  return {
    record: (event) => {
      const at = event.startedAt + event.latencyMs
      rollOver(at)
      const failed = event.status >= 500
      const key = event.keyName ?? anonymous
      let keyTally = keys.get(key)
      if (keyTally === undefined) {
        keyTally = tally()
        keys.set(key, keyTally)
      }
      count(keyTally, event, event.status >= 400)
      count(overall, event, event.status >= 400)
      if (event.status < 400) {
        overall.latency.push(event.latencyMs)
        if (event.cache === "miss") cacheMisses++
        else if (event.cache !== "none") cacheHits++
      }
      if (event.channel !== undefined) {
        let channelTally = channels.get(event.channel)
        if (channelTally === undefined) {
          channelTally = tally()
          channels.set(event.channel, channelTally)
        }
        count(channelTally, event, failed)
        if (!failed) channelTally.latency.push(event.latencyMs)
        // A client's mistake (4xx) says nothing of the channel's health.
        if (event.status < 400 || failed) alerts.attempt(event.channel, failed, event.latencyMs, at)
      }
      if (event.status < 400 || failed) alerts.request(failed, event.latencyMs, at)
      if (event.status >= 400) {
        errors.unshift({
          at: iso(at),
          requestId: event.requestId,
          route: event.route,
          status: event.status,
          error: event.error ?? `HTTP ${event.status}`,
          key,
          model: event.model ?? "",
          ...(event.channel === undefined ? {} : { channel: event.channel }),
        })
        if (errors.length > errorsKept) errors.pop()
      }
    },

    status: (now, views) => {
      rollOver(now)
      const channelList: Array<ChannelStatus> = [...channels.entries()].map(([name, entry]) => {
        const view = views.get(name)
        const breaker = view?.breaker ?? "closed"
        const upstream = view?.upstream
        const rate = entry.requests === 0 ? 0 : entry.errors / entry.requests
        const health: Health =
          breaker === "open"
            ? "down"
            : breaker === "half-open" || rate > errorRate
              ? "degraded"
              : entry.requests === 0 && (upstream?.samples ?? 0) === 0
                ? "idle"
                : "ok"
        const sorted = upstream === undefined ? [] : Float64Array.from(upstream.recent).sort()
        return {
          name,
          health,
          breaker,
          ...(view?.reopensInMs === undefined ? {} : { reopensInMs: view.reopensInMs }),
          requests: entry.requests,
          errors: entry.errors,
          spendTodayUsd: money(entry.spendUsd),
          latency: entry.latency.percentiles(),
          upstream:
            upstream === undefined
              ? null
              : {
                  calls: upstream.samples,
                  averageMs: Math.round(upstream.averageMs * 10) / 10,
                  p50Ms: sorted.length === 0 ? null : rank(sorted, 0.5),
                  p99Ms: sorted.length === 0 ? null : rank(sorted, 0.99),
                },
        }
      })
      return {
        generatedAt: iso(now),
        startedAt: iso(options.startedAt),
        day,
        pipeline: options.pipeline,
        totals: {
          requests: overall.requests,
          errors: overall.errors,
          spendTodayUsd: money(overall.spendUsd),
          cacheHits,
          cacheMisses,
          latency: overall.latency.percentiles(),
        },
        keys: [...keys.entries()]
          .map(([name, entry]) => ({
            name,
            requests: entry.requests,
            errors: entry.errors,
            spendTodayUsd: money(entry.spendUsd),
          }))
          .sort((a, b) => b.spendTodayUsd - a.spendTodayUsd || a.name.localeCompare(b.name)),
        channels: channelList,
        recentErrors: [...errors],
        firing: alerts.firing().map(toEntry),
        alerts: [...alertLog],
      }
    },
  }
}
