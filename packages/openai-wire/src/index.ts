/**
 * `@peel/openai-wire`: the OpenAI chat-completions wire for image generation and the SDK transport,
 * shared by the OpenRouter and OpenAI-compatible proxy channels.
 *
 * @since 0.1.0
 */
export * as ChatClient from "./ChatClient.ts"
export * as OpenAiWire from "./OpenAiWire.ts"
