/**
 * `@peel/channel-google-batch`: Gemini image models through Google's Batch API (half price, up to 24 h
 * turnaround) with the official `@google/genai` SDK's `batches` and `files`. The default export is the
 * channel plugin (`plugin: google-batch`); it takes only `urgency: batch` work.
 *
 * @since 0.1.0
 */
import { Channel } from "@peel/contract"
import * as GoogleBatchChannel from "./GoogleBatchChannel.ts"

export * as GoogleBatchChannel from "./GoogleBatchChannel.ts"
export * as GoogleBatchClient from "./GoogleBatchClient.ts"

export default Channel.definePlugin({
  specificationVersion: 2,
  name: "google-batch",
  description: "Google's Gemini Batch API through @google/genai batches and files: urgency: batch work at half price",
  config: GoogleBatchChannel.Config,
  make: (config, context) => GoogleBatchChannel.make(config, context),
})
