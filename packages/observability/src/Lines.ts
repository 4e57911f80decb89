/**
 * From the attempt journal to call-log lines: one {@link CallLog.AttemptLine} per attempt as the journal
 * records it, one {@link CallLog.RequestLine} per request when it ends. Only what the Schema names is
 * copied: never image bytes, never the prompt, never a key.
 *
 * @since 0.1.0
 */
import { type Attempt, Journal, type Plan, type Runner, VirtualKeys } from "@peel/core"
import type { AttemptLine, RequestLine } from "./CallLog.ts"

const iso = (ms: number) => new Date(ms).toISOString()
const usd = (value: number) => Math.round(value * 1e6) / 1e6
const ms = (value: number) => Math.round(value * 100) / 100

/** Messages are the channels' own (already redacted); kept short. */
const short = (message: string) => (message.length > 300 ? `${message.slice(0, 297)}...` : message)

/** The virtual key's name a gateway request carries (in its metadata), as a line's `key` field. */
const keyOf = (plan: Plan.Plan | undefined): { readonly key?: string } => {
  const key = VirtualKeys.nameInMetadata(plan?.request.metadata)
  return key === undefined ? {} : { key }
}

/** The line for one attempt. @category constructors */
export const attemptLine = (
  runId: string,
  request: { readonly id: string; readonly plan: Plan.Plan },
  attempt: Attempt.Attempt,
  now: number,
): AttemptLine => ({
  type: "attempt",
  time: iso(now),
  runId,
  requestId: request.id,
  promptHash: request.plan.promptHash,
  channel: attempt.channel,
  model: attempt.model,
  size: attempt.size,
  aspectRatio: request.plan.aspectRatio,
  outcome: attempt.outcome,
  ...(attempt.message === undefined || attempt.outcome === "ok" ? {} : { message: short(attempt.message) }),
  ...(attempt.status === undefined ? {} : { status: attempt.status }),
  startedAt: iso(attempt.startedAt),
  latencyMs: ms(attempt.latencyMs),
  ...(attempt.retryAfterMs === undefined ? {} : { retryAfterMs: attempt.retryAfterMs }),
  ...(attempt.usage === undefined ? {} : { usage: attempt.usage }),
  costUsd: usd(attempt.costUsd),
  ...(attempt.try === undefined ? {} : { try: attempt.try }),
  ...(attempt.hedge === true ? { hedge: true } : {}),
  ...(attempt.fallback === true ? { fallback: true } : {}),
  ...(attempt.cached === true ? { cached: true } : {}),
  ...(attempt.placeholder === true ? { placeholder: true } : {}),
  ...keyOf(request.plan),
})

/**
 * Did this attempt call an upstream? Not a refusal, an open circuit or a cooling-down channel (the
 * journal's `notCalls`), a cache hit or a placeholder.
 *
 * @category utils
 */
export const isCall = (attempt: {
  readonly outcome: string
  readonly cached?: boolean | undefined
  readonly placeholder?: boolean | undefined
}): boolean => !Journal.notCalls.has(attempt.outcome) && attempt.cached !== true && attempt.placeholder !== true

type Ended = Parameters<NonNullable<Runner.Observer["done"]>>[1]

/** The line for one request that ended. @category constructors */
export const requestLine = (runId: string, plan: Plan.Plan | undefined, outcome: Ended, now: number): RequestLine => {
  const attempts = outcome._tag === "Done" ? outcome.result.attempts : outcome.failure.attempts
  const calls = attempts.filter(isCall).length
  const markers = {
    hedged: attempts.some((attempt) => attempt.hedge === true),
    fallback: attempts.some((attempt) => attempt.fallback === true),
  }
  const asked = {
    ...(plan?.request.priority === undefined ? {} : { priority: plan.request.priority }),
    ...(plan?.request.use === undefined ? {} : { use: plan.request.use }),
    ...keyOf(plan),
  }
  if (outcome._tag === "Done") {
    const result = outcome.result
    return {
      type: "request",
      time: iso(now),
      runId,
      requestId: result.id,
      promptHash: result.promptHash,
      outcome: "ok",
      channel: result.channel,
      model: result.model,
      size: result.size,
      aspectRatio: result.aspectRatio,
      ...asked,
      latencyMs: ms(result.latencyMs),
      costUsd: usd(result.costUsd),
      attempts: attempts.length,
      calls,
      ...(result.usage === undefined ? {} : { usage: result.usage }),
      cached: result.cached,
      placeholder: result.placeholder,
      ...markers,
    }
  }
  const failure = outcome.failure
  const last = attempts.at(-1)
  return {
    type: "request",
    time: iso(now),
    runId,
    requestId: failure.id,
    ...(plan === undefined ? {} : { promptHash: plan.promptHash }),
    outcome: failure.error._tag,
    message: short(failure.error.message),
    ...(last === undefined ? {} : { channel: last.channel }),
    ...(plan === undefined
      ? {}
      : { model: last?.model ?? plan.model, size: last?.size ?? plan.size, aspectRatio: plan.aspectRatio }),
    ...asked,
    latencyMs: ms(failure.latencyMs),
    costUsd: usd(failure.costUsd),
    attempts: attempts.length,
    calls,
    cached: false,
    placeholder: false,
    ...markers,
  }
}
