/**
 * One attempt as core makes it: the channel's `generate` followed by core's single image check and
 * pricing (`Stages.callChannel` through the terminal handler), with a fresh journal. The conformance
 * suite goes through here, because since contract v2 a channel returns the upstream's bytes and core
 * decides whether they are an image; a channel that cannot serve a request is left out by core's plan.
 *
 * @since 0.2.0
 */
import { type Channel, type Errors, Journal, Plan, Stages } from "@peel/core"
import { Effect } from "effect"

/** Run one request at one channel exactly as core would; succeeds with the channel's image. @category attempts */
export const attempt = (
  channel: Channel.Channel,
  request: Channel.ChannelRequest,
): Effect.Effect<Channel.ChannelImage, Errors.PipelineError> => {
  const channels = new Map([[channel.name, channel]])
  const plan = Plan.finish(
    {
      id: request.id,
      request: { prompt: request.prompt },
      model: request.model,
      size: request.size,
      aspectRatio: request.aspectRatio,
      candidates: [channel.name],
      adjustments: [],
    },
    channels,
    Plan.defaultLimits,
  )
  const handler = Stages.makeHandler({ channels, pipelineFile: "conformance", pipelineDir: ".", today: "2026-11-26" })
  return handler({ ...plan, channelRequest: { ...plan.channelRequest, ...request } }).pipe(
    Effect.map((generated) => generated.image),
    Effect.provideService(Journal.Journal, Journal.make(0)),
  )
}
