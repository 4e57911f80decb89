/**
 * The attempt journal: one per request, the single record of every call made for it — refusals, failures,
 * billed failures, retries, hedges, fallbacks, cache hits. The result's `attempts` and `costUsd`, the
 * failure's, and (later) the call log, metrics and spans all read it; nothing else keeps its own tally.
 *
 * It is a service (`Journal`) so that any stage or policy can record without being handed it: the runner
 * provides a fresh one to each request.
 *
 * @since 0.2.0
 */

import type { Attempt } from "@peel/contract/Attempt"
import { Context, type Effect } from "effect"

/** The journal of one request. @category models */
export interface JournalShape {
  /** Epoch milliseconds when the request started. */
  readonly startedAt: number
  /** Record one attempt; returns its index (for {@link markWon}). */
  readonly record: (attempt: Attempt) => number
  /** Mark the attempt whose image the request returned. */
  readonly markWon: (index: number) => void
  /** Every attempt so far, in the order they ended. */
  readonly attempts: () => ReadonlyArray<Attempt>
  /** Sum of every attempt's cost (billed failures included). */
  readonly costUsd: () => number
  /** How many calls this request has made to `channel` so far (refusals, skips and cache hits excluded). */
  readonly callsTo: (channel: string) => number
  /** How many upstream calls this request has made in all. */
  readonly calls: () => number
}

/** Outcomes that record a decision, not an upstream call. @category models */
export const notCalls: ReadonlySet<string> = new Set(["Unsupported", "CircuitOpen", "CoolingDown"])

/** The current request's journal. @category services */
export class Journal extends Context.Service<Journal, JournalShape>()("@peel/core/Journal") {}

const roundUsd = (usd: number): number => Math.round(usd * 1e6) / 1e6

/**
 * A fresh, empty journal. `onRecord` sees each attempt as it is recorded (the call log, metrics and spans
 * hang off it).
 *
 * @category constructors
 */
export const make = (startedAt: number, onRecord?: (attempt: Attempt) => void): JournalShape => {
  const entries: Array<Attempt> = []
  const calls = new Map<string, number>()
  let total = 0
  return {
    startedAt,
    record: (attempt) => {
      onRecord?.(attempt)
      if (!notCalls.has(attempt.outcome) && attempt.cached !== true && attempt.placeholder !== true) {
        calls.set(attempt.channel, (calls.get(attempt.channel) ?? 0) + 1)
        total += 1
      }
      return entries.push(attempt) - 1
    },
    markWon: (index) => {
      const entry = entries[index]
      if (entry !== undefined) entries[index] = { ...entry, won: true }
    },
    attempts: () => entries,
    costUsd: () => roundUsd(entries.reduce((sum, entry) => sum + entry.costUsd, 0)),
    callsTo: (channel) => calls.get(channel) ?? 0,
    calls: () => total,
  }
}

/** Record an attempt in the current request's journal. @category accessors */
export const record = (attempt: Attempt): Effect.Effect<number, never, Journal> =>
  Journal.useSync((journal) => journal.record(attempt))
