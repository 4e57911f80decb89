/**
 * `select`: the candidate channels and their order — as listed, or cheapest first by each channel's
 * expected price for this request. Planning only; channels that cannot serve the request are left out
 * once, when the plan is finished. `urgency: batch` requests go to the batch channels listed (the real-time ones
 * after them take what a batch does not bring back, when `batch.unfinished` is `realtime`); other requests
 * never go to a batch-only channel.
 *
 * @since 0.1.0
 */

import { refusal } from "@peel/contract/Channel"
import { Effect, Schema } from "effect"
import * as Latency from "../engine/LatencyTracker.ts"
import { type Finding, type Middleware, planning, type StageDefinition } from "../engine/Stage.ts"
import { channelRequestOf, settle } from "../plan/Plan.ts"
import { ChannelStats, keyOf as ChannelStatsKey } from "../state/ChannelStats.ts"

const Config = Schema.Struct({
  strategy: Schema.optional(Schema.Literals(["ordered", "cheapest", "fastest"])).annotate({
    description:
      "ordered: as listed; cheapest: by each channel's expected price for this request; fastest: by each channel's observed latency (moving average; channels not yet measured first)",
  }),
  channels: Schema.Array(Schema.String).annotate({ description: "Candidate channel names" }),
  batch: Schema.optional(
    Schema.Struct({
      unfinished: Schema.Literals(["resubmit", "realtime", "report"]).annotate({
        description:
          "urgency: batch work that did not come back (job expired or failed, a retryable error inside it): resubmit in a new job, fall back to the real-time channels listed, or report it as failed",
      }),
      resubmits: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))).annotate({
        description: "How many new jobs one request may be resubmitted in before it is reported (default 1)",
      }),
    }),
  ).annotate({ description: "What happens to batch work that did not come back (default: resubmit once)" }),
}).annotate({ description: "Order the candidate channels for each request" })

/** Channel names in `names` that the pipeline does not define. @category checks */
export const unknownChannels = (
  names: ReadonlyArray<string>,
  known: ReadonlyArray<string>,
  pathPrefix: ReadonlyArray<string | number>,
): ReadonlyArray<Finding> =>
  names.flatMap((name, index) =>
    known.includes(name)
      ? []
      : [
          {
            path: [...pathPrefix, index],
            message: `unknown channel "${name}" (defined: ${known.join(", ") || "none"})`,
            severity: "error" as const,
          },
        ],
  )

/** @category stages */
export const select: StageDefinition<typeof Config.Type> = {
  key: "select",
  description: "Order the candidate channels: ordered, cheapest or fastest",
  schema: Config,
  check: (config, pipeline) => unknownChannels(config.channels, pipeline.channelNames, ["channels"]),
  make: (config, context) =>
    Effect.gen(function* () {
      const stats = yield* ChannelStats
      // fastest: the averages the generate stage records in the channel statistics (shared by every runner
      // sharing the state), read into a local view when the stage is built and after each request, so
      // planning stays pure.
      const averages = new Map<string, number>()
      const refresh = Effect.forEach(
        config.channels,
        (name) =>
          Effect.map(stats.summary(ChannelStatsKey(name)), (summary) => {
            if (summary === undefined) averages.delete(name)
            else averages.set(name, summary.averageMs)
          }),
        { discard: true },
      )
      const fastest = config.strategy === "fastest"
      if (fastest) yield* refresh
      const stage = yield* planning((original) => {
        const draft =
          config.batch === undefined
            ? original
            : { ...original, unfinished: { action: config.batch.unfinished, resubmits: config.batch.resubmits ?? 1 } }
        if (fastest) {
          const request = channelRequestOf(settle(draft))
          const usable = (name: string) => {
            const channel = context.channels.get(name)
            return channel !== undefined && refusal(channel, request) === undefined
          }
          return {
            ...draft,
            candidates: Latency.order({ estimate: (name) => averages.get(name) }, config.channels, usable),
          }
        }
        if (config.strategy !== "cheapest") return { ...draft, candidates: config.channels }
        const request = channelRequestOf(settle(draft))
        const priced = config.channels.map((name, index) => {
          const channel = context.channels.get(name)
          const price =
            channel === undefined || refusal(channel, request) !== undefined ? Infinity : channel.price(request)
          return { name, index, price }
        })
        priced.sort((left, right) => left.price - right.price || left.index - right.index)
        return { ...draft, candidates: priced.map((entry) => entry.name) }
      })
      if (!fastest) return stage
      const around: Middleware = (next) => (plan) => next(plan).pipe(Effect.onExit(() => refresh))
      return { ...stage, around }
    }),
}
