/**
 * The call log: JSON lines, one per attempt (`"type":"attempt"`), one per request (`"type":"request"`),
 * one per alert that fires or clears (`"type":"alert"`), and a line where a run starts and ends
 * (`"type":"run"`). Every line carries the time and the run id. Defined by {@link CallLogLine}, a Schema,
 * so `peel report` and `peel stats` decode what `peel run --call-log` wrote.
 *
 * What is never in it: a key or token (attempt messages are the channels' own, already redacted), image
 * bytes, or the prompt (only its hash: `promptHash`, SHA-256 of the canonical request).
 *
 * @since 0.1.0
 */
import { Attempt as CoreAttempt } from "@peel/core"
import { Result, Schema } from "effect"

const common = {
  /** When the line was written (ISO 8601, UTC). */
  time: Schema.String,
  /** The run that wrote it (one `peel run`, one runner). */
  runId: Schema.String,
}

/** One call to one channel (or one refusal before any call), as the attempt journal recorded it. @category schemas */
export const AttemptLine = Schema.Struct({
  type: Schema.Literal("attempt"),
  ...common,
  requestId: Schema.String,
  /** SHA-256 of the canonical request (normalised prompt, model, size, aspect ratio); never the prompt. */
  promptHash: Schema.String,
  channel: Schema.String,
  model: Schema.String,
  size: Schema.String,
  aspectRatio: Schema.optional(Schema.String),
  /** `ok`, `Interrupted`, `CircuitOpen` (no call), or the error tag (`RateLimited`, `Unsupported`, ...). */
  outcome: Schema.String,
  /** The channel's message for a failure (already redacted by the channel), at most 300 characters. */
  message: Schema.optional(Schema.String),
  /** HTTP status, when the upstream answered with one. */
  status: Schema.optional(Schema.Number),
  /** When the call started (ISO 8601). */
  startedAt: Schema.String,
  latencyMs: Schema.Number,
  retryAfterMs: Schema.optional(Schema.Number),
  usage: Schema.optional(CoreAttempt.Usage),
  /** What this call cost (billed failures included). */
  costUsd: Schema.Number,
  /** 1 for the first call to this channel within the request, 2 for its first retry, ... */
  try: Schema.optional(Schema.Number),
  hedge: Schema.optional(Schema.Boolean),
  fallback: Schema.optional(Schema.Boolean),
  cached: Schema.optional(Schema.Boolean),
  /** A fallback's placeholder image (no call, no cost). */
  placeholder: Schema.optional(Schema.Boolean),
  /** The virtual key's name, for a request through the gateway (never the key itself). */
  key: Schema.optional(Schema.String),
})
/** @category models */
export type AttemptLine = typeof AttemptLine.Type

/** One request, when it ended. @category schemas */
export const RequestLine = Schema.Struct({
  type: Schema.Literal("request"),
  ...common,
  requestId: Schema.String,
  /** Absent only for a request refused before it was planned (invalid). */
  promptHash: Schema.optional(Schema.String),
  /** `ok` or the error tag that ended it. */
  outcome: Schema.String,
  message: Schema.optional(Schema.String),
  /** The channel that made the image (ok), or the last one tried. */
  channel: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String),
  size: Schema.optional(Schema.String),
  aspectRatio: Schema.optional(Schema.String),
  priority: Schema.optional(Schema.String),
  use: Schema.optional(Schema.String),
  /** The virtual key's name, for a request through the gateway (never the key itself). */
  key: Schema.optional(Schema.String),
  /** The whole request, from planning to the image checked. */
  latencyMs: Schema.Number,
  /** Every attempt's cost, billed failures included. */
  costUsd: Schema.Number,
  /** Attempts recorded (refusals included). */
  attempts: Schema.Number,
  /** Upstream calls made (refusals and cache hits excluded). */
  calls: Schema.Number,
  usage: Schema.optional(CoreAttempt.Usage),
  cached: Schema.Boolean,
  placeholder: Schema.Boolean,
  /** An attempt was started by hedging. */
  hedged: Schema.Boolean,
  /** An attempt was made by a fallback alternative. */
  fallback: Schema.Boolean,
})
/** @category models */
export type RequestLine = typeof RequestLine.Type

/** The alerts Peel watches. @category schemas */
export const AlertName = Schema.Literals(["upstream-error-rate", "request-failure-rate", "latency-p99"])
/** @category models */
export type AlertName = typeof AlertName.Type

/** An alert firing or clearing. @category schemas */
export const AlertLine = Schema.Struct({
  type: Schema.Literal("alert"),
  ...common,
  alert: AlertName,
  /** A channel name (upstream error rate, attempt latency) or `requests`. */
  scope: Schema.String,
  state: Schema.Literals(["firing", "cleared"]),
  /** The measured value: a rate (0..1) or milliseconds. */
  value: Schema.Number,
  threshold: Schema.Number,
  /** Samples in the window when it was evaluated. */
  samples: Schema.Number,
  windowMs: Schema.Number,
  message: Schema.String,
})
/** @category models */
export type AlertLine = typeof AlertLine.Type

/** A run starting or ending. @category schemas */
export const RunLine = Schema.Struct({
  type: Schema.Literal("run"),
  ...common,
  event: Schema.Literals(["start", "end"]),
  pipeline: Schema.optional(Schema.String),
  /** Requests the run was given (start). */
  requests: Schema.optional(Schema.Number),
  /** How it ended (end): `ok`, `failed`, `SIGINT`, `SIGTERM`, ... */
  status: Schema.optional(Schema.String),
})
/** @category models */
export type RunLine = typeof RunLine.Type

/** Any line of the call log. @category schemas */
export const CallLogLine = Schema.Union([AttemptLine, RequestLine, AlertLine, RunLine])
/** @category models */
export type CallLogLine = typeof CallLogLine.Type

const decodeLine = Schema.decodeUnknownResult(Schema.fromJsonString(CallLogLine))

/** Decode one line of a call log. @category decoding */
export const decode = (line: string): Result.Result<CallLogLine, string> =>
  Result.mapError(decodeLine(line), (error) => String(error).split("\n")[0] ?? "not a call-log line")

/** Encode one line (no trailing newline). @category encoding */
export const encode = (line: CallLogLine): string => JSON.stringify(line)

/** What reading a call log found: the lines, and any that could not be decoded (with their line numbers). @category models */
export interface Parsed {
  readonly lines: ReadonlyArray<CallLogLine>
  readonly problems: ReadonlyArray<string>
}

/** Decode the text of a call log; blank lines are ignored, bad ones reported as `FILE:LINE: problem`. @category decoding */
export const parse = (text: string, file = "call log"): Parsed => {
  const lines: Array<CallLogLine> = []
  const problems: Array<string> = []
  let number = 0
  for (const raw of text.split("\n")) {
    number += 1
    if (raw.trim() === "") continue
    const decoded = decode(raw)
    if (Result.isSuccess(decoded)) lines.push(decoded.success)
    else problems.push(`${file}:${number}: ${decoded.failure}`)
  }
  return { lines, problems }
}
