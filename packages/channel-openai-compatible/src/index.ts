/**
 * `@peel/channel-openai-compatible`: Gemini image models through any OpenAI-compatible proxy (laozhang
 * preset) with the official `openai` SDK. The default export is the channel plugin
 * (`plugin: openai-compatible`).
 *
 * @since 0.1.0
 */
import { Channel } from "@peel/contract"
import * as OpenAiCompatibleChannel from "./OpenAiCompatibleChannel.ts"

export * as OpenAiCompatibleChannel from "./OpenAiCompatibleChannel.ts"
export * as OpenAiCompatibleClient from "./OpenAiCompatibleClient.ts"
export * as Presets from "./Presets.ts"

export default Channel.definePlugin({
  specificationVersion: 1,
  name: "openai-compatible",
  description: "Any OpenAI-compatible proxy's chat completions (markdown data-URI images); presets: laozhang",
  config: OpenAiCompatibleChannel.Config,
  make: OpenAiCompatibleChannel.make,
})
