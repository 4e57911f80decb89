/**
 * `@peel/contract`: what a channel plugin needs and nothing more — the request and result types, the tagged
 * errors, the model catalog, pricing, image helpers, units, the channel contract and both plugin styles
 * (Effect `ChannelPlugin` and Promise-style `definePromisePlugin`). No YAML loader, no SQLite, no runner:
 * those live in `@peel/core`, which re-exports every namespace here under the same name.
 *
 * @since 0.4.0
 */

export * as Attempt from "./Attempt.ts"
export * as Catalog from "./Catalog.ts"
export * as Channel from "./Channel.ts"
export * as Duration from "./Duration.ts"
export * as Errors from "./Errors.ts"
export * as Image from "./Image.ts"
export * as Issues from "./Issues.ts"
export * as Network from "./Network.ts"
export * as Plugin from "./Plugin.ts"
export * as Pricing from "./Pricing.ts"
export {
  type ConfigValidator,
  definePromisePlugin,
  type PromiseChannel,
  type PromisePluginDefinition,
  type StandardSchemaV1,
} from "./PromisePlugin.ts"
export * as Request from "./Request.ts"
export * as Units from "./Units.ts"
