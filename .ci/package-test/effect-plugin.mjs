// (d) A third-party plugin written against the Effect contract: a Schema config and an Effect generate.
import { Channel, Errors } from "@peel/core"
import { Effect, Schema } from "effect"

export default Channel.definePlugin({
  specificationVersion: 2,
  name: "packaged-effect",
  description: "a channel written with Effect that is always busy",
  config: Schema.Struct({}),
  make: (_config, context) =>
    Effect.succeed({
      name: context.name,
      plugin: "packaged-effect",
      capabilities: { models: ["gemini-3-pro-image"] },
      price: () => 0.02,
      generate: () => Effect.fail(new Errors.Rejected({ channel: context.name, message: "always busy" })),
    }),
})
