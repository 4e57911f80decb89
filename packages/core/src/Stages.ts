/**
 * The stages core ships, and the pieces of `generate` that policies and strategies plug into. The stage
 * contract itself is {@link Stage}; one file per stage lives in `stages/`.
 *
 * @since 0.1.0
 */

export { fallback } from "./stages/fallback.ts"
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
} from "./stages/generate.ts"
export { definitions } from "./stages/index.ts"
export { resolution } from "./stages/resolution.ts"
export { route } from "./stages/route.ts"
export { select, unknownChannels } from "./stages/select.ts"
