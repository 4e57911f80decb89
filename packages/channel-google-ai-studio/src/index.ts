/**
 * `@peel/channel-google-ai-studio`: Gemini image models through Google AI Studio (the Gemini API) with
 * the official `@google/genai` SDK. The default export is the channel plugin (`plugin: google-ai-studio`).
 *
 * @since 0.1.0
 */
import { Channel } from "@peel/contract"
import * as GoogleAiStudioChannel from "./GoogleAiStudioChannel.ts"

export * as GoogleAiStudioChannel from "./GoogleAiStudioChannel.ts"
export * as GoogleAiStudioClient from "./GoogleAiStudioClient.ts"

export default Channel.definePlugin({
  specificationVersion: 1,
  name: "google-ai-studio",
  description:
    "Google AI Studio (Gemini API) through @google/genai; also a proxy's Gemini-native route with auth: bearer",
  config: GoogleAiStudioChannel.Config,
  make: GoogleAiStudioChannel.make,
})
