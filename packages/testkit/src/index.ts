/**
 * `@peel/testkit`: the shared conformance suite every Peel channel plugin runs against the simulator, and the
 * helpers it is built from. A channel package's test calls {@link conformance} once:
 *
 * ```ts
 * import { conformance } from "@peel/testkit"
 * conformance({ plugin, route: "proxy-chat", config: (url) => ({ apiKey: "sk-test", baseUrl: `${url}/v1` }), ... })
 * ```
 *
 * @since 0.1.0
 */
export { attempt } from "./Attempt.ts"
export {
  type Claims,
  type ConformanceOptions,
  checkEchoedSecret,
  checkError,
  checkInterruption,
  checkNoSecret,
  checkPlaceholderKeyWarning,
  checkPrice,
  checkRedactedConfig,
  checkRefusal,
  checkSuccess,
  conformance,
  echoFaults,
} from "./Conformance.ts"
export {
  defaultErrors,
  type ErrorExpectation,
  type ErrorMap,
  type ErrorTag,
  expectedTag,
  geminiErrors,
  openAiErrors,
} from "./ErrorMaps.ts"
export {
  captureLogs,
  channelName,
  claimedRequests,
  type Exposure,
  eventually,
  type Harness,
  type HarnessOptions,
  type Ledger,
  type LedgerCall,
  ledger,
  makeHarness,
  pipelineFile,
  type RecordedRequest,
  recordedRequests,
  type SimulatorHandle,
  sampleRequest,
  settle,
  startSimulator,
  withChannel,
} from "./Harness.ts"
export { binDir as postgresBinDir, type PostgresServer, startPostgres } from "./Postgres.ts"
export { type RedisServer, startRedis } from "./RedisServer.ts"
