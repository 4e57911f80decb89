/**
 * `select`: the candidate channels and their order — as listed, or cheapest first by each channel's
 * expected price for this request. Planning only; channels that cannot serve the request are left out
 * once, when the plan is finished.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { refusal } from "../Channel.ts"
import { channelRequestOf, settle } from "../Plan.ts"
import { type Finding, planning, type StageDefinition } from "../Stage.ts"

const Config = Schema.Struct({
  strategy: Schema.optional(Schema.Literals(["ordered", "cheapest"])).annotate({
    description: "ordered: as listed; cheapest: by each channel's expected price for this request",
  }),
  channels: Schema.Array(Schema.String).annotate({ description: "Candidate channel names" }),
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
  description: "Order the candidate channels: ordered or cheapest",
  schema: Config,
  check: (config, pipeline) => unknownChannels(config.channels, pipeline.channelNames, ["channels"]),
  make: (config, context) =>
    planning((draft) => {
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
    }),
}
