/**
 * `@peel/channel-openrouter`: Gemini image models through OpenRouter's chat completions with the
 * official `openai` SDK. The default export is the channel plugin (`plugin: openrouter`).
 *
 * @since 0.1.0
 */
import { Channel } from "@peel/contract"
import * as OpenRouterChannel from "./OpenRouterChannel.ts"

export * as OpenRouterChannel from "./OpenRouterChannel.ts"
export * as OpenRouterClient from "./OpenRouterClient.ts"

export default Channel.definePlugin({
  specificationVersion: 1,
  name: "openrouter",
  description:
    "OpenRouter chat completions (modalities + image_config, message.images, usage.cost) through the openai SDK",
  config: OpenRouterChannel.Config,
  make: OpenRouterChannel.make,
})
