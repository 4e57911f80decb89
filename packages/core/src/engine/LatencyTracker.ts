/**
 * Observed latency per channel: an exponentially weighted moving average of each channel's call latency,
 * fed from the attempt journal (every call the request made, once it ends) or from a runner
 * {@link observer}. The engine itself keeps these statistics in the `ChannelStats` state service
 * (`state/ChannelStats.ts`, one record per channel, shared by runners sharing a state Layer); this
 * standalone tracker applies the same rule ({@link ChannelStats.fold}) for callers that watch a runner
 * from outside (the public `Latency` namespace).
 *
 * - Successful calls count their latency.
 * - A failed call counts as at least twice the channel's current average (a fast 503 must not make a
 *   channel look fast); refusals, cache hits and interrupted calls (a hedge that lost) are not calls.
 * - Channels never measured come first, in the order listed, so each gets measured.
 *
 * @since 0.3.0
 */

import type { Attempt } from "@peel/contract/Attempt"
import { Effect } from "effect"
import * as ChannelStats from "../state/ChannelStats.ts"
import { Journal } from "./AttemptJournal.ts"
import type { Middleware } from "./Stage.ts"

/** Latency averages by channel. @category model */
export interface Tracker {
  readonly observe: (attempt: Attempt) => void
  /** The channel's average latency in ms; `undefined` until it has been measured. */
  readonly estimate: (channel: string) => number | undefined
  readonly snapshot: () => Readonly<Record<string, { readonly averageMs: number; readonly samples: number }>>
}

/** A tracker; `alpha` is the weight of each new sample (default 0.3). @category constructors */
export const make = (alpha = ChannelStats.alpha): Tracker => {
  const summaries = new Map<string, ChannelStats.Summary>()
  return {
    observe: (attempt) => {
      if (attempt.cached === true || attempt.outcome === "Unsupported" || attempt.outcome === "Interrupted") return
      summaries.set(
        attempt.channel,
        ChannelStats.fold(
          summaries.get(attempt.channel),
          { latencyMs: attempt.latencyMs, ok: attempt.outcome === "ok" },
          alpha,
        ),
      )
    },
    estimate: (channel) => summaries.get(channel)?.averageMs,
    snapshot: () =>
      Object.fromEntries(
        [...summaries].map(([channel, summary]) => [
          channel,
          { averageMs: summary.averageMs, samples: summary.samples },
        ]),
      ),
  }
}

/**
 * `names` fastest first: usable channels never measured (in the order given), then by average latency;
 * channels that cannot serve the request last (the plan leaves them out, with the reason).
 *
 * @category ordering
 */
export const order = (
  tracker: Pick<Tracker, "estimate">,
  names: ReadonlyArray<string>,
  usable: (name: string) => boolean,
): ReadonlyArray<string> =>
  names
    .map((name, index) => ({ name, index, rank: usable(name) ? (tracker.estimate(name) ?? -1) : Infinity }))
    .sort((left, right) => left.rank - right.rank || left.index - right.index)
    .map((entry) => entry.name)

/** Request middleware that feeds the tracker every call the request made, when it ends. @category constructors */
export const middleware =
  (tracker: Tracker): Middleware =>
  (next) =>
  (plan) =>
    Effect.gen(function* () {
      const journal = yield* Journal
      const from = journal.attempts().length
      return yield* next(plan).pipe(
        Effect.onExit(() =>
          Effect.sync(() => {
            for (const attempt of journal.attempts().slice(from)) tracker.observe(attempt)
          }),
        ),
      )
    })

/** A runner observer that feeds the tracker as each attempt is recorded. @category constructors */
export const observer = (tracker: Tracker) => ({
  attempt: (_request: unknown, attempt: Attempt) => tracker.observe(attempt),
})
