/**
 * `@peel/core`: pipeline schema and loader, stages, runner, errors, catalog, pricing and the channel
 * plugin contract. Import namespaces: `import { Catalog, Errors, Channel, Pipeline, Runner } from "@peel/core"`,
 * or the Promise facade `createRunner`.
 *
 * @since 0.1.0
 */

export * as Attempt from "@peel/contract/Attempt"
export * as Catalog from "@peel/contract/Catalog"
export * as Channel from "@peel/contract/Channel"
/** @deprecated use `Units` (durations, windows, sizes, shares in one module); kept for one release. */
export * as Duration from "@peel/contract/Duration"
export * as Errors from "@peel/contract/Errors"
export * as Image from "@peel/contract/Image"
export * as Network from "@peel/contract/Network"
export * as Plugin from "@peel/contract/Plugin"
export * as Pricing from "@peel/contract/Pricing"
export {
  type ConfigValidator,
  definePromisePlugin,
  type PromiseChannel,
  type PromisePluginDefinition,
  type StandardSchemaV1,
} from "@peel/contract/PromisePlugin"
export * as Request from "@peel/contract/Request"
export * as Units from "@peel/contract/Units"
export * as Bulk from "./bulk/Bulk.ts"
export * as Requests from "./bulk/Requests.ts"
export * as Cache from "./cache/Cache.ts"
export * as Pipeline from "./config/Pipeline.ts"
export * as Workload from "./config/Workload.ts"
export * as Journal from "./engine/AttemptJournal.ts"
export * as Latency from "./engine/LatencyTracker.ts"
export * as Stage from "./engine/Stage.ts"
export * as Estimate from "./estimate/Estimate.ts"
export {
  createRunner,
  type GenerateAllOptions,
  type GenerateOptions,
  type PromiseRunner,
} from "./facade/PromiseFacade.ts"
export * as Output from "./output/Output.ts"
export * as Identity from "./plan/Identity.ts"
export * as Inputs from "./plan/Inputs.ts"
export * as Plan from "./plan/Plan.ts"
export * as Runner from "./runner/Runner.ts"
export * as Session from "./runner/Session.ts"
export * as Budget from "./spend/Budget.ts"
export * as KeySpend from "./spend/KeySpend.ts"
export * as Money from "./spend/Money.ts"
export * as Stages from "./stages/index.ts"
export * as RateLimits from "./state/RateLimits.ts"
export * as SpendLedger from "./state/SpendLedger.ts"
export * as SpendLedgerSqlite from "./state/SpendLedgerSqlite.ts"
export * as State from "./state/State.ts"
export * as VirtualKeys from "./state/VirtualKeys.ts"
export * as VirtualKeysSqlite from "./state/VirtualKeysSqlite.ts"
export * as BatchWork from "./work/BatchWork.ts"
export * as WorkJournal from "./work/WorkJournal.ts"
