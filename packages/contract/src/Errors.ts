/**
 * The error taxonomy. Every channel maps upstream failures to one of the channel errors below; core adds
 * its own. The **class decides `retryable`**: policies (retry, failover) read that verdict and never
 * switch on HTTP status codes. Errors carry `channel` when a channel raised them, and never carry a
 * secret or a raw upstream body (use {@link describeBody} to quote one safely).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { Usage } from "./Attempt.ts"

const channelFields = {
  /** Name of the channel (as configured in the pipeline) that raised the error. */
  channel: Schema.String,
  message: Schema.String,
  /** HTTP status when the upstream answered with one. */
  status: Schema.optional(Schema.Number),
  /** Usage the upstream reported for a call it billed although the answer is unusable. */
  usage: Schema.optional(Usage),
  /** What that billed call cost, when the upstream says so or the channel is flat-priced. */
  costUsd: Schema.optional(Schema.Number),
}

/** 429 / RESOURCE_EXHAUSTED. Retryable unless the quota is per-day. @category channel errors */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  ...channelFields,
  /** Milliseconds the upstream asked us to wait (RetryInfo.retryDelay, Retry-After). */
  retryAfterMs: Schema.optional(Schema.Number),
  /** True when a daily quota is exhausted: it will not clear within seconds. */
  daily: Schema.optional(Schema.Boolean),
}) {
  get retryable(): boolean {
    return this.daily !== true
  }
  /** Another channel may well have quota left. */
  readonly failover = true
}

/** 500/502/503/504, connection reset or refused. @category channel errors */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  ...channelFields,
  retryAfterMs: Schema.optional(Schema.Number),
}) {
  readonly retryable = true
  readonly failover = true
}

/** No answer in time. @category channel errors */
export class Timeout extends Schema.TaggedError<Timeout>()("Timeout", channelFields) {
  readonly retryable = true
  readonly failover = true
}

/** 401/403, e.g. billing not enabled or a bad key. Not retryable here; another channel may work. @category channel errors */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", channelFields) {
  readonly retryable = false
  readonly failover = true
}

/** 402: the account has no credits left. @category channel errors */
export class InsufficientCredits extends Schema.TaggedError<InsufficientCredits>()(
  "InsufficientCredits",
  channelFields,
) {
  readonly retryable = false
  readonly failover = true
}

/** 400: the request itself is invalid; no channel will accept it. @category channel errors */
export class Rejected extends Schema.TaggedError<Rejected>()("Rejected", channelFields) {
  readonly retryable = false
  readonly failover = false
}

/** A safety block (finishReason IMAGE_SAFETY, promptFeedback.blockReason, ...). @category channel errors */
export class ContentBlocked extends Schema.TaggedError<ContentBlocked>()("ContentBlocked", {
  ...channelFields,
  reason: Schema.String,
}) {
  readonly retryable = false
  readonly failover = false
}

/** The answer had no image part (text only, NO_IMAGE, MAX_TOKENS, ...). @category channel errors */
export class NoImage extends Schema.TaggedError<NoImage>()("NoImage", {
  ...channelFields,
  finishReason: Schema.optional(Schema.String),
}) {
  readonly retryable = true
  readonly failover = true
}

/** Unparseable body, bad base64, bytes that are not an image. @category channel errors */
export class MalformedResponse extends Schema.TaggedError<MalformedResponse>()("MalformedResponse", channelFields) {
  readonly retryable = true
  readonly failover = true
}

/** The channel cannot serve this request (model, size, aspect ratio); refused before any call. @category channel errors */
export class Unsupported extends Schema.TaggedError<Unsupported>()("Unsupported", channelFields) {
  readonly retryable = false
  readonly failover = true
}

/** Every error a channel's `generate` may fail with. @category channel errors */
export type ChannelError =
  | RateLimited
  | Unavailable
  | Timeout
  | Unauthorized
  | InsufficientCredits
  | Rejected
  | ContentBlocked
  | NoImage
  | MalformedResponse
  | Unsupported

/** @category channel errors */
export const ChannelError = Schema.Union([
  RateLimited,
  Unavailable,
  Timeout,
  Unauthorized,
  InsufficientCredits,
  Rejected,
  ContentBlocked,
  NoImage,
  MalformedResponse,
  Unsupported,
])

/** Every channel error class by its tag: the one list `isChannelError` and `withBilling` read. */
const channelErrorClasses = {
  RateLimited,
  Unavailable,
  Timeout,
  Unauthorized,
  InsufficientCredits,
  Rejected,
  ContentBlocked,
  NoImage,
  MalformedResponse,
  Unsupported,
} as const

const channelErrorTags: ReadonlySet<string> = new Set(Object.keys(channelErrorClasses))

/** True for any channel error, by `_tag` (never `instanceof`: plugins may carry their own copy). @category channel errors */
export const isChannelError = (error: unknown): error is ChannelError =>
  typeof error === "object" && error !== null && channelErrorTags.has((error as { _tag?: unknown })._tag as string)

/** One problem in a configuration file, located. @category core errors */
export class ConfigProblem extends Schema.Class<ConfigProblem>("@peel/core/ConfigProblem")({
  file: Schema.String,
  line: Schema.Number,
  column: Schema.Number,
  message: Schema.String,
  severity: Schema.Literals(["error", "warning"]),
}) {
  /** `FILE:LINE:COL: message` */
  format(): string {
    const prefix = this.severity === "warning" ? "warning: " : ""
    return `${this.file}:${this.line}:${this.column}: ${prefix}${this.message}`
  }
}

/** A pipeline file that cannot be used. Carries every problem found, not just the first. @category core errors */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  file: Schema.String,
  problems: Schema.Array(ConfigProblem),
}) {
  readonly retryable = false
  override get message(): string {
    return this.problems.map((problem) => problem.format()).join("\n")
  }
}

/** Required environment variables that are unset; all of them, in one error. @category core errors */
export class MissingSecret extends Schema.TaggedError<MissingSecret>()("MissingSecret", {
  variables: Schema.Array(Schema.String),
  file: Schema.optional(Schema.String),
}) {
  readonly retryable = false
  override get message(): string {
    const where = this.file === undefined ? "" : ` (needed by ${this.file})`
    return `environment variable${this.variables.length > 1 ? "s" : ""} ${this.variables.join(", ")} ${
      this.variables.length > 1 ? "are" : "is"
    } not set${where}`
  }
}

/** A call would exceed the spend cap. @category core errors */
export class BudgetExceeded extends Schema.TaggedError<BudgetExceeded>()("BudgetExceeded", {
  message: Schema.String,
  limitUsd: Schema.Number,
  spentUsd: Schema.Number,
}) {
  readonly retryable = false
}

/** Every candidate channel was skipped or failed; `attempts` says why for each. @category core errors */
export class NoChannel extends Schema.TaggedError<NoChannel>()("NoChannel", {
  message: Schema.String,
}) {
  readonly retryable = false
}

/** Writing an image to disk failed. @category core errors */
export class OutputError extends Schema.TaggedError<OutputError>()("OutputError", {
  message: Schema.String,
  path: Schema.String,
}) {
  readonly retryable = false
}

/** Everything a pipeline run can fail with. @category core errors */
export type PipelineError = ChannelError | BudgetExceeded | NoChannel | OutputError | InvalidRequest

/**
 * Secrets shorter than this many characters cannot be told apart from ordinary words (`x`, `test`,
 * `abc`): {@link redact} removes them only where they stand alone as a token, never from inside a word
 * (with the key `x`, "Resource exhausted" stays intact), and first-party channels warn that such a key
 * looks like a placeholder ({@link isPlaceholderSecret}). Real API keys and tokens are far longer.
 *
 * @category utils
 */
export const minSecretLength = 8

/** True for a secret too short to be a real credential (under {@link minSecretLength} characters). @category utils */
export const isPlaceholderSecret = (secret: string): boolean => secret.trim().length < minSecretLength

/**
 * The warning a channel gives (`context.warn`) when the secret in `field` looks like a placeholder, or
 * `undefined` when it looks like a real credential. @category utils
 */
export const placeholderSecretWarning = (field: string, secret: string): string | undefined =>
  isPlaceholderSecret(secret)
    ? `${field} is shorter than ${minSecretLength} characters: it looks like a placeholder, not a real key (and a secret that short cannot be told apart from words, so it is only redacted where it stands alone)`
    : undefined

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Characters a short secret must not touch on either side to count as a token of its own. */
const tokenCharacter = "A-Za-z0-9_\\-"

/**
 * The one function through which upstream text may reach a message, a log line or a result: every secret
 * removed (also URL-encoded; secrets under {@link minSecretLength} characters only as whole tokens), runs of
 * base64 elided, whitespace collapsed, and cut to at most `limit` characters. Secrets go first, so a key
 * inside a long base64-looking run is still removed whole.
 *
 * @category utils
 */
export const redact = (text: string, secrets: ReadonlyArray<string> = [], limit = 300): string => {
  const variants = new Set<string>()
  for (const secret of secrets) {
    for (const variant of [secret, secret.trim(), encodeURIComponent(secret.trim())])
      if (variant.trim().length > 0) variants.add(variant)
  }
  let result = text
  for (const secret of [...variants].sort((left, right) => right.length - left.length)) {
    result =
      secret.length >= minSecretLength
        ? result.split(secret).join("<redacted>")
        : result.replace(
            new RegExp(`(?<![${tokenCharacter}])${escapeRegExp(secret)}(?![${tokenCharacter}])`, "g"),
            "<redacted>",
          )
  }
  result = result.replace(/[A-Za-z0-9+/=]{200,}/g, (run) => `<${run.length} base64 chars>`)
  result = result.replace(/\s+/g, " ").trim()
  return result.length > limit ? `${result.slice(0, limit)}…` : result
}

/**
 * Quote an upstream body in an error message through {@link redact}: at most `limit` characters, base64
 * runs elided, secrets removed. Never put a whole upstream body (megabytes of base64) in an error.
 *
 * @category utils
 */
export const describeBody = (body: string, secrets: ReadonlyArray<string> = [], limit = 300): string =>
  redact(body, secrets, limit)

/** A request that does not match the ImageRequest Schema (bad JSONL line, bad facade call). @category core errors */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  message: Schema.String,
}) {
  readonly retryable = false
}

/** @category core errors */
export const PipelineError = Schema.Union([
  RateLimited,
  Unavailable,
  Timeout,
  Unauthorized,
  InsufficientCredits,
  Rejected,
  ContentBlocked,
  NoImage,
  MalformedResponse,
  Unsupported,
  BudgetExceeded,
  NoChannel,
  OutputError,
  InvalidRequest,
])

/**
 * The same error, carrying what the upstream billed for the call (its usage, or a price): a failed answer
 * that was paid for is a cost, not nothing. Unchanged when there is nothing billed to add.
 *
 * @category channel errors
 */
export const withBilling = <E extends ChannelError>(
  error: E,
  billing: { readonly usage?: typeof Usage.Type | undefined; readonly costUsd?: number | undefined },
): E => {
  if (billing.usage === undefined && billing.costUsd === undefined) return error
  const Class = channelErrorClasses[error._tag] as unknown as new (fields: object) => E
  const { _tag: _ignored, ...fields } = { ...error } as { _tag: string } & Record<string, unknown>
  return new Class({
    ...fields,
    message: error.message,
    ...(billing.usage === undefined ? {} : { usage: billing.usage }),
    ...(billing.costUsd === undefined ? {} : { costUsd: billing.costUsd }),
  })
}
