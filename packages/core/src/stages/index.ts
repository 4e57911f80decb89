/**
 * The stages core ships, and the pieces of `generate` that policies and strategies plug into. The stage
 * contract itself is {@link Stage}; one file per stage lives in `stages/`.
 *
 * @since 0.1.0
 */

export { fallback } from "./fallback.ts"
export {
  type Answer,
  type AttemptPolicy,
  type Call,
  type CallMarkers,
  callChannel,
  generate,
  generated,
  type HedgeBudget,
  hedged,
  makeHandler,
  noChannel,
  recordRefusals,
  type Strategy,
  sequential,
} from "./generate.ts"
export { definitions } from "./registry.ts"
export { resolution } from "./resolution.ts"
export { route } from "./route.ts"
export { select, unknownChannels } from "./select.ts"
