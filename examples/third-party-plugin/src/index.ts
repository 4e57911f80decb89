/**
 * `peel-channel-example`: a third-party Peel channel plugin written only against `@peel/contract`, the plugin contract.
 * It talks to an OpenAI-compatible chat proxy with plain `fetch`. The default export is the plugin, so a
 * pipeline can load it with `plugin: peel-channel-example` or `plugin: ./path/to/src/index.ts`.
 *
 * @since 0.1.0
 */
import { Channel } from "@peel/contract"
import * as ExampleChannel from "./ExampleChannel.ts"

export * as ExampleChannel from "./ExampleChannel.ts"
export * as ExampleClient from "./ExampleClient.ts"

/** The plugin. @category plugin */
export default Channel.definePlugin({
  specificationVersion: Channel.specificationVersion,
  name: ExampleChannel.pluginName,
  description: "Example: an OpenAI-compatible chat proxy that answers with a markdown data-URI image (1K, 1:1)",
  config: ExampleChannel.Config,
  make: ExampleChannel.make,
})
