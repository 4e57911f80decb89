/**
 * `@peel/gemini-wire`: the Gemini `generateContent` wire shared by AI Studio, Vertex AI and Batch channels.
 *
 * @since 0.1.0
 */
export * as GeminiWire from "./GeminiWire.ts"
export * as Transport from "./Transport.ts"
