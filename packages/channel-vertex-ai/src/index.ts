/**
 * `@peel/channel-vertex-ai`: Gemini image models through Vertex AI with the official `@google/genai`
 * SDK (`vertexai: true`). The default export is the channel plugin (`plugin: vertex-ai`).
 *
 * @since 0.1.0
 */
import { Channel } from "@peel/contract"
import * as VertexAiChannel from "./VertexAiChannel.ts"

export * as VertexAiChannel from "./VertexAiChannel.ts"
export * as VertexAiClient from "./VertexAiClient.ts"

export default Channel.definePlugin({
  specificationVersion: 1,
  name: "vertex-ai",
  description:
    "Vertex AI through @google/genai (vertexai: true): project + location with ADC, a service account or a token; or express mode with an API key",
  config: VertexAiChannel.Config,
  make: VertexAiChannel.make,
})
