/**
 * `@peel/core`: pipeline schema and loader, stages, runner, errors, catalog, pricing and the channel
 * plugin contract. Import namespaces: `import { Catalog, Errors, Channel, Pipeline, Runner } from "@peel/core"`,
 * or the Promise facade `createRunner`.
 *
 * @since 0.1.0
 */

export * as Attempt from "./Attempt.ts"
export * as BatchWork from "./BatchWork.ts"
export * as Budget from "./Budget.ts"
export * as Cache from "./Cache.ts"
export * as Catalog from "./Catalog.ts"
export * as Channel from "./Channel.ts"
export * as Duration from "./Duration.ts"
export * as Errors from "./Errors.ts"
export * as Estimate from "./Estimate.ts"
export * as Image from "./Image.ts"
export * as Inputs from "./Inputs.ts"
export * as Journal from "./Journal.ts"
export * as Latency from "./Latency.ts"
export * as Output from "./Output.ts"
export * as Pipeline from "./Pipeline.ts"
export * as Plan from "./Plan.ts"
export * as Plugin from "./Plugin.ts"
export * as Pricing from "./Pricing.ts"
export {
  createRunner,
  type GenerateAllOptions,
  type GenerateOptions,
  type PromiseRunner,
} from "./PromiseFacade.ts"
export {
  type ConfigValidator,
  definePromisePlugin,
  type PromiseChannel,
  type PromisePluginDefinition,
  type StandardSchemaV1,
} from "./PromisePlugin.ts"
export * as Request from "./Request.ts"
export * as Runner from "./Runner.ts"
export * as Stage from "./Stage.ts"
export * as Stages from "./Stages.ts"
export * as WorkJournal from "./WorkJournal.ts"
export * as Workload from "./Workload.ts"
