/**
 * `@peel/gateway`: Peel behind the SDKs people already use (`peel serve`). Gemini-native routes for
 * `@google/genai` / `google-genai`, one {@link Execute} path from every wire to one pipeline run, typed
 * gateway errors each wire renders its own way, key policies, events for metrics and spend logs.
 *
 * @since 0.1.0
 */

export * as AdminRoutes from "./admin/routes.ts"
export * as Errors from "./Errors.ts"
export * as Events from "./Events.ts"
export * as Execute from "./Execute.ts"
export * as Gateway from "./Gateway.ts"
export * as GeminiWire from "./gemini/GeminiWire.ts"
export * as GeminiRoutes from "./gemini/routes.ts"
export * as Health from "./Health.ts"
export * as Http from "./Http.ts"
export * as KeyPolicy from "./KeyPolicy.ts"
export * as Keys from "./keys/Keys.ts"
export * as VirtualKeyPolicy from "./keys/VirtualKeyPolicy.ts"
export * as OpenAiErrors from "./openai/Errors.ts"
export * as OpenAiImageLinks from "./openai/ImageLinks.ts"
export * as OpenAiRequests from "./openai/Requests.ts"
export * as OpenAiResponses from "./openai/Responses.ts"
export * as OpenAiRoutes from "./openai/routes.ts"
export * as OpenAiSizes from "./openai/Sizes.ts"
export * as OpsMetrics from "./ops/Metrics.ts"
export * as Ops from "./ops/Ops.ts"
export * as Status from "./ops/Status.ts"
export * as StatusPage from "./ops/StatusPage.ts"
