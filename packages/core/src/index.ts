/**
 * `@peel/core`: pipeline schema and loader, stages, runner, errors, catalog, pricing and the channel
 * plugin contract. Import namespaces: `import { Catalog, Errors, Channel } from "@peel/core"`.
 *
 * @since 0.1.0
 */
export * as Catalog from "./Catalog.ts"
export * as Channel from "./Channel.ts"
export * as Errors from "./Errors.ts"
export * as Image from "./Image.ts"
export * as Plugin from "./Plugin.ts"
export * as Pricing from "./Pricing.ts"
export * as Request from "./Request.ts"
