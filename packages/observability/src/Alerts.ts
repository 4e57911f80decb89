/**
 * Alerts over a sliding window: the upstream error rate per channel (over attempts), the request failure
 * rate, and p99 latency (of whole requests, and of each channel's calls). An alert fires when its value
 * passes the threshold with at least `minSamples` in the window, and clears when it is back at or under
 * it; both are reported once, as {@link AlertEvent}s (the observer writes them to the call log and stderr).
 *
 * What counts as an upstream error: any call whose outcome is not `ok`, except refusals before a call
 * (`Unsupported`, `CircuitOpen`, `CoolingDown`), cache hits, attempts cut short by Peel itself (`Interrupted`: a hedge's loser) and
 * safety blocks (`ContentBlocked`: the prompt's doing, not the upstream's health).
 *
 * @since 0.1.0
 */
import type { AlertName } from "./CallLog.ts"

/** @category models */
export interface AlertOptions {
  /** Error rate (0..1) above which the error-rate alerts fire. The brief's 5% by default. */
  readonly errorRate?: number
  /** p99 latency (ms) above which the latency alerts fire. The brief's 30 s by default. */
  readonly p99Ms?: number
  /** Window length (ms). 5 minutes by default. */
  readonly windowMs?: number
  /** Samples a window needs before it can fire (or clear). 20 by default. */
  readonly minSamples?: number
}

/** @category defaults */
export const defaults: Required<AlertOptions> = { errorRate: 0.05, p99Ms: 30_000, windowMs: 300_000, minSamples: 20 }

/** @category models */
export interface AlertEvent {
  readonly alert: AlertName
  readonly scope: string
  readonly state: "firing" | "cleared"
  readonly value: number
  readonly threshold: number
  readonly samples: number
  readonly windowMs: number
  /** Epoch ms when it was evaluated. */
  readonly at: number
  readonly message: string
}

/** Outcomes that say nothing about the upstream's health. */
const neutral = new Set(["Unsupported", "CircuitOpen", "CoolingDown", "Interrupted"])
const notErrors = new Set(["ok", "ContentBlocked"])

/** Is this attempt's outcome an upstream error (true), a success (false), or neither (undefined)? @category utils */
export const classify = (outcome: string, cached: boolean | undefined): boolean | undefined => {
  if (cached === true || neutral.has(outcome)) return undefined
  return !notErrors.has(outcome)
}

/** The value at quantile `q` (0..1) of `values` (nearest rank). @category utils */
export const quantile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]!
}

/** At most this many samples per window, however busy the run. */
const maxSamples = 5_000

class Window {
  private at: Array<number> = []
  private bad: Array<boolean> = []
  private latency: Array<number> = []
  private start = 0
  private badCount = 0
  private readonly windowMs: number
  constructor(windowMs: number) {
    this.windowMs = windowMs
  }
  push(at: number, bad: boolean, latencyMs: number) {
    this.at.push(at)
    this.bad.push(bad)
    this.latency.push(latencyMs)
    if (bad) this.badCount++
    this.prune(at)
  }
  prune(now: number) {
    while (this.start < this.at.length && (this.at[this.start]! < now - this.windowMs || this.size() > maxSamples)) {
      if (this.bad[this.start]) this.badCount--
      this.start++
    }
    if (this.start > 1024 && this.start * 2 > this.at.length) {
      this.at = this.at.slice(this.start)
      this.bad = this.bad.slice(this.start)
      this.latency = this.latency.slice(this.start)
      this.start = 0
    }
  }
  size() {
    return this.at.length - this.start
  }
  rate() {
    return this.size() === 0 ? 0 : this.badCount / this.size()
  }
  bads() {
    return this.badCount
  }
  p99() {
    return quantile(this.latency.slice(this.start), 0.99)
  }
}

const percent = (rate: number) => `${(rate * 100).toFixed(1)}%`
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`
const windowText = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000}m` : seconds(ms))

/** @category models */
export interface Alerts {
  /** A call to `channel` ended at `at`: `error` from {@link classify} (undefined: not counted). */
  readonly attempt: (channel: string, error: boolean | undefined, latencyMs: number, at: number) => void
  /** A request ended at `at`. */
  readonly request: (failed: boolean, latencyMs: number, at: number) => void
  /** Alerts firing now. */
  readonly firing: () => ReadonlyArray<AlertEvent>
}

/**
 * Watch attempts and requests; `emit` hears each alert as it fires and as it clears.
 *
 * @category constructors
 */
export const make = (options: AlertOptions, emit: (event: AlertEvent) => void): Alerts => {
  const settings = { ...defaults, ...options }
  const windows = new Map<string, Window>()
  const firing = new Map<string, AlertEvent>()
  /** Samples since p99 was last evaluated, per window: sorting on every sample would cost too much. */
  const sinceP99 = new Map<string, number>()

  const windowOf = (key: string) => {
    let window = windows.get(key)
    if (window === undefined) {
      window = new Window(settings.windowMs)
      windows.set(key, window)
    }
    return window
  }

  const judge = (alert: AlertName, scope: string, value: number, threshold: number, samples: number, at: number) => {
    if (samples < settings.minSamples) return
    const key = `${alert}\u0000${scope}`
    const active = firing.get(key)
    const over = value > threshold
    if (over === (active !== undefined)) return
    const what =
      alert === "upstream-error-rate"
        ? `upstream error rate on ${scope}`
        : alert === "request-failure-rate"
          ? "request failure rate"
          : `p99 latency of ${scope === "requests" ? "requests" : `calls to ${scope}`}`
    const shown = alert === "latency-p99" ? seconds(value) : percent(value)
    const limit = alert === "latency-p99" ? seconds(threshold) : percent(threshold)
    const event: AlertEvent = {
      alert,
      scope,
      state: over ? "firing" : "cleared",
      value: alert === "latency-p99" ? Math.round(value) : Math.round(value * 1e4) / 1e4,
      threshold,
      samples,
      windowMs: settings.windowMs,
      at,
      message: over
        ? `${what} ${shown} > ${limit} (${samples} in the last ${windowText(settings.windowMs)})`
        : `${what} back to ${shown} ≤ ${limit} (${samples} in the last ${windowText(settings.windowMs)})`,
    }
    if (over) firing.set(key, event)
    else firing.delete(key)
    emit(event)
  }

  const latency = (key: string, scope: string, window: Window, at: number) => {
    const count = (sinceP99.get(key) ?? 0) + 1
    if (count < 10 && window.size() > settings.minSamples) {
      sinceP99.set(key, count)
      return
    }
    sinceP99.set(key, 0)
    judge("latency-p99", scope, window.p99(), settings.p99Ms, window.size(), at)
  }

  return {
    attempt: (channel, error, latencyMs, at) => {
      if (error === undefined) return
      const window = windowOf(`attempts\u0000${channel}`)
      window.push(at, error, latencyMs)
      judge("upstream-error-rate", channel, window.rate(), settings.errorRate, window.size(), at)
      latency(`attempts\u0000${channel}`, channel, window, at)
    },
    request: (failed, latencyMs, at) => {
      const window = windowOf("requests")
      window.push(at, failed, latencyMs)
      judge("request-failure-rate", "requests", window.rate(), settings.errorRate, window.size(), at)
      latency("requests", "requests", window, at)
    },
    firing: () => [...firing.values()],
  }
}
