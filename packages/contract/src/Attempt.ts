/**
 * The records a request leaves behind: each {@link Attempt} (one call to one channel, or one refusal
 * before any call) and each {@link Adjustment} the plan made to what was asked. Schemas, because they
 * cross boundaries: `--json` lines, the call log, reports.
 *
 * @since 0.2.0
 */
import { Schema } from "effect"

/** Token counts as the upstream reported them. @category schemas */
export const Usage = Schema.Struct({
  inputTokens: Schema.optional(Schema.Number),
  outputImageTokens: Schema.optional(Schema.Number),
  outputTextTokens: Schema.optional(Schema.Number),
  thoughtTokens: Schema.optional(Schema.Number),
})
/** @category models */
export type Usage = typeof Usage.Type

/**
 * One try at one channel, as the attempt journal recorded it.
 *
 * @category schemas
 */
export const Attempt = Schema.Struct({
  channel: Schema.String,
  model: Schema.String,
  size: Schema.String,
  /** Epoch milliseconds when the call started. */
  startedAt: Schema.Number,
  latencyMs: Schema.Number,
  /** `ok`, `Interrupted`, or the error's `_tag` (`RateLimited`, `Unsupported`, ...). */
  outcome: Schema.String,
  message: Schema.optional(Schema.String),
  /** HTTP status, when the upstream answered with one. */
  status: Schema.optional(Schema.Number),
  /** The delay the upstream asked for (RetryInfo, Retry-After). */
  retryAfterMs: Schema.optional(Schema.Number),
  usage: Schema.optional(Usage),
  /** What this call cost (billed failures included; refusals and unbilled failures 0). */
  costUsd: Schema.Number,
  /** 1 for the first call to this channel within the request, 2 for its first retry, ... */
  try: Schema.optional(Schema.Number),
  /** Started by hedging while an earlier attempt was still running. */
  hedge: Schema.optional(Schema.Boolean),
  /** A hedge sent to the same channel as the call it races (no other candidate was ready). */
  sameChannel: Schema.optional(Schema.Boolean),
  /** Made by a fallback alternative. */
  fallback: Schema.optional(Schema.Boolean),
  /** Answered from the cache. */
  cached: Schema.optional(Schema.Boolean),
  /** The placeholder image of a fallback (no call, no cost). */
  placeholder: Schema.optional(Schema.Boolean),
  /** The attempt whose image the request returned. */
  won: Schema.optional(Schema.Boolean),
})
/** @category models */
export type Attempt = typeof Attempt.Type

/** Something the plan changed from what was asked, and why. @category schemas */
export const Adjustment = Schema.Struct({
  field: Schema.String,
  from: Schema.String,
  to: Schema.String,
  reason: Schema.String,
})
/** @category models */
export type Adjustment = typeof Adjustment.Type
