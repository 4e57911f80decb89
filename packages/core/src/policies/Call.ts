/**
 * The shapes attempt policies and candidate strategies plug into: one {@link Call} to one channel for one
 * plan, an {@link AttemptPolicy} that wraps it, a {@link Strategy} over the candidates. The `generate`
 * stage builds them; the policies here and the stage both depend on this file, never on each other.
 *
 * @since 0.4.0
 */

import type { Channel, ChannelImage } from "@peel/contract/Channel"
import type { ChannelError, PipelineError } from "@peel/contract/Errors"
import type { ImageInfo } from "@peel/contract/Image"
import type { Effect } from "effect"
import type { Journal } from "../engine/AttemptJournal.ts"
import type { Plan } from "../plan/Plan.ts"

/** A checked answer from one call, with its index in the journal. @category model */
export interface Answer {
  readonly channel: Channel
  readonly image: ChannelImage
  readonly info: ImageInfo
  readonly index: number
}

/** One call to one channel for one plan. @category model */
export type Call = (channel: Channel, plan: Plan, markers: CallMarkers) => Effect.Effect<Answer, ChannelError, Journal>

/** An attempt-level policy wraps each call to one channel (retry, rate limit, breaker). @category model */
export type AttemptPolicy = (call: Call) => Call

/** How the candidates are tried. @category model */
export type Strategy = (
  candidates: ReadonlyArray<Channel>,
  call: Call,
  plan: Plan,
) => Effect.Effect<Answer, PipelineError, Journal>

/** Markers a call records in the journal besides its outcome. @category model */
export interface CallMarkers {
  readonly hedge?: boolean
  /** A hedge sent to the channel already being called (no other candidate was ready). */
  readonly sameChannel?: boolean
  /** Told when each call (a retry included) is sent: a strategy's hedge delay counts from it. */
  readonly onSend?: (startedAt: number) => void
}

/** Whether one more hedge may start now (taking it from the budget when it may). @category model */
export interface HedgeBudget {
  readonly allow: Effect.Effect<boolean>
}
