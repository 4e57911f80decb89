/**
 * `generate`, the innermost stage: tries the plan's candidates. Its pieces are the seams later policies
 * plug into:
 *
 * - {@link callChannel}: ONE call to one channel — bounded by the attempt timeout (interruption aborts the
 *   HTTP request), the image checked and sniffed once, the attempt priced once and recorded in the
 *   request's journal (on success, failure or interruption alike);
 * - attempt-level {@link AttemptPolicy}s wrap that call (retry, rate limit, circuit breaker);
 * - a {@link Strategy} decides how candidates are tried (sequential failover here; hedging later).
 *
 * @since 0.2.0
 */

import type { Channel, ChannelImage, ChannelRequest } from "@peel/contract/Channel"
import {
  type ChannelError,
  isChannelError,
  MalformedResponse,
  NoChannel,
  type PipelineError,
  Timeout,
  Unavailable,
} from "@peel/contract/Errors"
import { inspectImage } from "@peel/contract/Image"
import { attemptCost } from "@peel/contract/Pricing"
import { DurationMillis } from "@peel/contract/Units"
import { Cause, Clock, Effect, Exit, Fiber, Schema } from "effect"
import { Journal, type JournalShape } from "../engine/AttemptJournal.ts"
import type { Generated, Handler, StageContext, StageDefinition } from "../engine/Stage.ts"
import { sleepUntil } from "../internal/sleepUntil.ts"
import { raceAfter, timeoutOrElse } from "../internal/timeout.ts"
import type { Plan } from "../plan/Plan.ts"
import * as Breaker from "../policies/Breaker.ts"
import type { Answer, AttemptPolicy, Call, CallMarkers, HedgeBudget, Strategy } from "../policies/Call.ts"
import * as Gate from "../policies/Gate.ts"
import * as Observe from "../policies/Observe.ts"
import type { RequestLimits } from "../policies/Retry.ts"
import * as Retry from "../policies/Retry.ts"
import { ChannelStats } from "../state/ChannelStats.ts"
import { HedgeBudget as HedgeBudgetService } from "../state/HedgeBudget.ts"
import { unknownChannels } from "./select.ts"

export type { Answer, AttemptPolicy, Call, CallMarkers, HedgeBudget, Strategy }

const outcomeOf = (exit: Exit.Exit<unknown, ChannelError>) => {
  if (Exit.isSuccess(exit)) return { outcome: "ok" } as const
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "None") return { outcome: "Interrupted" } as const
  const value = error.value
  return {
    outcome: value._tag,
    message: value.message,
    ...(value.status === undefined ? {} : { status: value.status }),
    ...("retryAfterMs" in value && value.retryAfterMs !== undefined ? { retryAfterMs: value.retryAfterMs } : {}),
  }
}

const checkImage = (channel: Channel, image: ChannelImage): Effect.Effect<Answer, ChannelError> => {
  const info = inspectImage(image.bytes)
  if (info !== undefined) return Effect.succeed({ channel, image, info, index: -1 })
  return Effect.fail(
    new MalformedResponse({
      channel: channel.name,
      message: `the answer's image data (${image.bytes.length} bytes) is not a complete PNG, JPEG, WebP or GIF image`,
      ...(image.usage === undefined ? {} : { usage: image.usage }),
      ...(image.costUsd === undefined ? {} : { costUsd: image.costUsd }),
    }),
  )
}

/**
 * One call to one channel: timeout, image check, price, journal record.
 *
 * @category attempts
 */
export const callChannel =
  (timeout: number | undefined | TimeoutOf): Call =>
  (channel, plan, markers) =>
    // The clock is read directly (no effect per reading): the hot path of every call.
    Effect.clockWith((clock) => {
      const startedAt = clock.currentTimeMillisUnsafe()
      return typeof timeout === "function"
        ? Effect.flatMap(timeout(channel, plan), (timeoutMillis) =>
            callBounded(timeout, channel, plan, markers, clock, startedAt, timeoutMillis),
          )
        : callBounded(timeout, channel, plan, markers, clock, startedAt, timeout)
    })

/** {@link callChannel} once the call's start and timeout are known. */
const callBounded = (
  timeout: number | undefined | TimeoutOf,
  channel: Channel,
  plan: Plan,
  markers: CallMarkers,
  clock: Clock.Clock,
  startedAt: number,
  timeoutMillis: number | undefined,
): Effect.Effect<Answer, ChannelError, Journal> => {
  markers.onSend?.(startedAt)
  const request: ChannelRequest = plan.channelRequest
  const generate = channel.generate(request)
  const timedOut = (millis: number) => new Timeout({ channel: channel.name, message: `no answer within ${millis} ms` })
  // An adaptive timeout is read again every second while the call runs: a hang that began before the
  // channel's latency was known is cut as soon as it is.
  const watch = (current: number): Effect.Effect<never, Timeout> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      now - startedAt >= current
        ? Effect.fail(timedOut(current))
        : Effect.sleep(Math.min(current - (now - startedAt), 1000)).pipe(
            Effect.andThen(typeof timeout === "function" ? timeout(channel, plan) : Effect.succeed(current)),
            Effect.flatMap((next) => watch(next ?? current)),
          ),
    )
  const bounded =
    timeoutMillis === undefined
      ? generate
      : typeof timeout === "function"
        ? raceAfter(generate, Math.min(timeoutMillis, 1000), () =>
            Effect.flatMap(timeout(channel, plan), (next) => watch(next ?? timeoutMillis)),
          )
        : timeoutOrElse(generate, timeoutMillis, () => Effect.fail(timedOut(timeoutMillis)))
  let index = -1
  // What the upstream answered, kept the moment it arrives: an attempt interrupted after that (a hedge
  // that lost by a hair) was still billed, and is priced from it.
  let answered: ChannelImage | undefined
  return Effect.flatMap(bounded, (image) => {
    answered = image
    return checkImage(channel, image)
  }).pipe(
    Effect.onExit((exit) =>
      Journal.useSync((journal) => {
        const now = clock.currentTimeMillisUnsafe()
        const billing = Exit.isSuccess(exit)
          ? exit.value.image
          : Cause.findErrorOption(exit.cause).pipe((option) => (option._tag === "Some" ? option.value : answered))
        const outcome = outcomeOf(exit)
        const usage = billing?.usage
        index = journal.record({
          channel: channel.name,
          model: request.model,
          size: request.size,
          startedAt,
          latencyMs: now - startedAt,
          ...outcome,
          ...(usage === undefined ? {} : { usage }),
          costUsd: attemptCost(
            channel,
            request,
            billing,
            Exit.isSuccess(exit) || (outcome.outcome === "Interrupted" && answered !== undefined),
          ),
          try: journal.callsTo(channel.name) + 1,
          ...(markers.hedge === true ? { hedge: true } : {}),
          ...(markers.sameChannel === true ? { sameChannel: true } : {}),
          ...(plan.fallback === true ? { fallback: true } : {}),
        })
      }),
    ),
    Effect.map((answer) => ({ ...answer, index })),
  )
}

/** The attempt timeout of one call (ms; `undefined` for none): fixed, or adapted to observed latency. @category model */
export type TimeoutOf = (channel: Channel, plan: Plan) => Effect.Effect<number | undefined>

/** Calls one request may still make: checked before a new candidate starts. */
const callsLeft = (maxCalls: number) => Journal.useSync((journal) => journal.calls() < maxCalls)

/**
 * Sequential failover: each candidate in turn; an error another channel might not have (`failover`)
 * moves on, `Rejected` and `ContentBlocked` stop at once.
 *
 * @category strategies
 */
export const sequential =
  (maxCalls = Number.POSITIVE_INFINITY): Strategy =>
  (candidates, call, plan) => {
    // Candidate `index`, after `lastError` from the one before (none for the first).
    const from = (
      index: number,
      lastError: ChannelError | undefined,
    ): Effect.Effect<Answer, PipelineError, Journal> => {
      if (index >= candidates.length) return lastError === undefined ? noChannel(plan) : Effect.fail(lastError)
      const attempt = Effect.catchCause(call(candidates[index]!, plan, {}), (cause) => {
        const error = Cause.findErrorOption(cause)
        if (error._tag === "None" || !isChannelError(error.value)) return Effect.failCause(cause)
        return error.value.failover ? from(index + 1, error.value) : Effect.fail(error.value)
      })
      if (lastError === undefined) return attempt
      return Effect.flatMap(callsLeft(maxCalls), (left) => (left ? attempt : Effect.fail(lastError)))
    }
    return from(0, undefined)
  }

/**
 * Run `effect` so that, when it is interrupted, it gets up to `graceMillis` to finish first: a hedge that
 * lost while its answer was already coming back completes (and is priced as the upstream billed it);
 * one still waiting for the upstream is then aborted.
 *
 * @category strategies
 */
export const graceful = <A, E, R>(effect: Effect.Effect<A, E, R>, graceMillis: number): Effect.Effect<A, E, R> =>
  graceMillis <= 0
    ? effect
    : Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(Effect.forkChild(restore(effect)), (fiber) =>
          restore(Fiber.join(fiber)).pipe(
            Effect.onInterrupt(() =>
              Fiber.await(fiber).pipe(
                Effect.timeout(graceMillis),
                Effect.ignore,
                Effect.andThen(Fiber.interrupt(fiber)),
              ),
            ),
          ),
        ),
      )

/**
 * Hedged: like sequential, but when the current candidate has not answered after `delayFor(channel, plan)`
 * ms, another call starts beside it (marked `hedge`) once the budget allows (asked again every second
 * while it does not): the next candidate when one of the later candidates is `ready` (not cooling down:
 * circuit closed, quota not paused), otherwise the SAME channel again (marked `sameChannel` too: a second
 * call usually lands on another upstream replica, so a hang on the last ready channel does not cost the
 * whole timeout). The first image wins; the others are interrupted, which aborts their HTTP requests. A
 * deterministic failure (`Rejected`, `ContentBlocked`) stops everything at once; no hedge starts after one.
 *
 * @category strategies
 */
export const hedged =
  (
    delayFor: (channel: Channel, plan: Plan) => number | Effect.Effect<number>,
    budget: HedgeBudget | { readonly allow: () => boolean },
    maxCalls = Number.POSITIVE_INFINITY,
    graceMillis = 0,
    /** Whether a candidate is ready now; without it, no hedge goes to the same channel. */
    ready?: (channel: Channel, plan: Plan) => Effect.Effect<boolean>,
  ): Strategy =>
  (candidates, call, plan) => {
    const allow = Effect.suspend(() =>
      Effect.isEffect(budget.allow) ? budget.allow : Effect.sync(budget.allow as () => boolean),
    )
    const delayOf = (channel: Channel) =>
      Effect.suspend(() => {
        const delay = delayFor(channel, plan)
        return Effect.isEffect(delay) ? delay : Effect.succeed(delay)
      })
    /**
     * Wait until the channel has gone the hedge delay without news: the clock restarts when each call is
     * sent (a retry after a 429) and when each attempt this request recorded on the channel ended (a pause
     * met, a failure before a backoff), so a call that just failed and is about to be retried is not taken
     * for a hang; the delay is read again every second as latency becomes known.
     */
    const hedgeDue = (
      channel: Channel,
      delay: Effect.Effect<number>,
      lastSend: () => number,
    ): Effect.Effect<void, never, Journal> =>
      Effect.gen(function* () {
        const journal = yield* Journal
        const levelStart = yield* Clock.currentTimeMillis
        const check: Effect.Effect<void> = Effect.flatMap(Effect.zip(delay, Clock.currentTimeMillis), ([wait, now]) => {
          let since = Math.max(levelStart, lastSend())
          for (const attempt of journal.attempts())
            if (attempt.channel === channel.name && attempt.hedge !== true && attempt.startedAt >= levelStart)
              since = Math.max(since, attempt.startedAt + attempt.latencyMs)
          const due = since + Math.max(0, wait)
          // Look again at least every second: the delay shortens once the channel's latency is known.
          return due <= now ? Effect.void : Effect.flatMap(Effect.sleep(Math.min(due - now, 1000)), () => check)
        })
        return yield* check
      })
    const from = (index: number, markers: CallMarkers): Effect.Effect<Answer, ChannelError, Journal> =>
      Effect.suspend(() => {
        const channel = candidates[index]!
        const hasNext = index + 1 < candidates.length
        // Who runs candidate index + 1: the failover of this one, or its hedge — never both.
        let handedOver = false
        let primaryAlive = true
        let hedgeAlive = false
        // A same-channel hedge, and whether the primary's branch (with its failover) has ended.
        let sameAlive = false
        let branchDone = false
        const next = (nextMarkers: CallMarkers) =>
          Effect.flatMap(callsLeft(maxCalls), (left) =>
            left ? from(index + 1, nextMarkers) : Effect.fail(exhausted(channel, plan)),
          )
        let sentAt = 0
        const primaryMarkers: CallMarkers = {
          ...markers,
          onSend: (at) => {
            sentAt = at
            markers.onSend?.(at)
          },
        }
        const primary = graceful(call(channel, plan, primaryMarkers), graceMillis).pipe(
          Effect.catch((error) => {
            primaryAlive = false
            if (!error.failover || !hasNext) return hedgeAlive && error.failover ? Effect.never : Effect.fail(error)
            if (handedOver) return hedgeAlive ? Effect.never : Effect.fail(error)
            handedOver = true
            return next({})
          }),
          Effect.catch((error) => {
            branchDone = true
            return sameAlive && error.failover ? Effect.never : Effect.fail(error)
          }),
        )
        // Without `ready`, the next candidate is taken as ready (and there is no hedge after the last one).
        const laterReady: Effect.Effect<boolean | undefined> =
          ready === undefined
            ? Effect.succeed(hasNext ? true : undefined)
            : Effect.map(
                Effect.forEach(candidates.slice(index + 1), (candidate) => ready(candidate, plan)),
                (states) => states.some((state) => state),
              )
        // Once the hedge is due: where it would go, and whether the budget lets it. A budget that says no
        // is asked again every second (it is a share of the calls in a sliding window, so it frees as
        // other calls are made) for as long as the call is still waiting.
        const launch: Effect.Effect<Answer, ChannelError, Journal> = Effect.suspend(
          (): Effect.Effect<boolean | undefined> => (handedOver ? Effect.succeed(undefined) : laterReady),
        ).pipe(
          Effect.flatMap((anotherReady) => {
            if (anotherReady === undefined || handedOver || branchDone) return Effect.never
            return Effect.flatMap(Effect.zip(allow, callsLeft(maxCalls)), ([allowed, left]) => {
              if (!left || handedOver || branchDone) return Effect.never
              if (!allowed) return Effect.andThen(Effect.sleep(1000), launch)
              if (anotherReady && hasNext) {
                handedOver = true
                hedgeAlive = true
                return next({ hedge: true }).pipe(
                  Effect.catch((error) => {
                    hedgeAlive = false
                    return primaryAlive && error.failover ? Effect.never : Effect.fail(error)
                  }),
                )
              }
              sameAlive = true
              return graceful(call(channel, plan, { hedge: true, sameChannel: true }), graceMillis).pipe(
                Effect.catch((error) => {
                  sameAlive = false
                  return !branchDone && error.failover ? Effect.never : Effect.fail(error)
                }),
              )
            })
          }),
        )
        const hedge = Effect.andThen(
          hedgeDue(channel, delayOf(channel), () => sentAt),
          launch,
        )
        return Effect.raceFirst(primary, hedge)
      })
    return from(0, {})
  }

const exhausted = (channel: Channel, plan: Plan): ChannelError =>
  new Unavailable({
    channel: channel.name,
    message: `request ${plan.id} used its attempt budget`,
  })

/** Every candidate was refused. @category errors */
export const noChannel = (plan: Plan): NoChannel =>
  new NoChannel({
    message: `no channel can serve ${plan.model} ${plan.size} ${plan.aspectRatio}${
      plan.refused.length === 0
        ? " (no candidates)"
        : `: ${plan.refused.map((refused) => `${refused.channel}: ${refused.reason}`).join("; ")}`
    }`,
  })

/** The journal entries for channels the plan left out (no call was made to them). @category attempts */
export const recordRefusals = (plan: Plan): Effect.Effect<void, never, Journal> =>
  Journal.useSync((journal) => recordRefusalsIn(journal, plan))

const recordRefusalsIn = (journal: JournalShape, plan: Plan): void => {
  for (const refused of plan.refused)
    journal.record({
      channel: refused.channel,
      model: plan.model,
      size: plan.size,
      startedAt: journal.startedAt,
      latencyMs: 0,
      outcome: "Unsupported",
      message: refused.reason,
      costUsd: 0,
    })
}

/** Turn the winning answer into what the runner writes, marking it in the journal. @category attempts */
export const generated = (plan: Plan, answer: Answer): Effect.Effect<Generated, never, Journal> =>
  Journal.useSync((journal) => generatedIn(journal, plan, answer))

const generatedIn = (journal: JournalShape, plan: Plan, answer: Answer): Generated => {
  journal.markWon(answer.index)
  return {
    channel: answer.channel.name,
    model: plan.model,
    size: plan.size,
    aspectRatio: plan.aspectRatio,
    image: answer.image,
    info: answer.info,
    cached: false,
    placeholder: false,
  }
}

/** When a candidate may be called again for a model (breaker open, quota paused), in epoch ms. @category model */
export type CooldownOf = (channel: string, model: string) => number | Effect.Effect<number>

/**
 * The terminal handler: record refusals; when every candidate is cooling down and the earliest reopens
 * before the deadline, wait for it; try the candidates with `strategy`, each call wrapped by `policies`
 * (outermost first); bound the whole by the request's deadline.
 *
 * @category constructors
 */
export const makeHandler = (
  context: StageContext,
  options: {
    readonly timeoutMillis?: number | undefined | TimeoutOf
    readonly policies?: ReadonlyArray<AttemptPolicy>
    readonly strategy?: Strategy
    readonly limits?: RequestLimits
    readonly cooldownOf?: CooldownOf
  } = {},
): Handler => {
  const call = (options.policies ?? []).reduceRight<Call>(
    (inner, policy) => policy(inner),
    callChannel(options.timeoutMillis),
  )
  const strategy = options.strategy ?? sequential()
  const limits = options.limits
  const cooldownOf = options.cooldownOf
  const maxCalls = limits?.maxCalls ?? Number.POSITIVE_INFINITY
  return (plan) =>
    Journal.use((journal) => {
      if (plan.refused.length > 0) recordRefusalsIn(journal, plan)
      const candidates = plan.candidates.map((name) => context.channels.get(name)!)
      if (candidates.length === 0) return noChannel(plan)
      const fullDeadline = limits?.deadlineAt(journal)
      // A fallback stage keeps part of the deadline for its alternatives (plan.deadlineShare).
      const deadlineAt =
        fullDeadline === undefined || plan.deadlineShare === undefined
          ? fullDeadline
          : journal.startedAt + (fullDeadline - journal.startedAt) * plan.deadlineShare
      // When every candidate is cooling down (breaker open, quota paused) and the first reopens before the
      // deadline, wait for it instead of failing — before trying, and again after a round that only met
      // cooling channels. Bounded by the deadline, the attempt budget and a few rounds.
      const waitForReopening: Effect.Effect<boolean> =
        cooldownOf === undefined
          ? Effect.succeed(false)
          : Effect.clockWith((clock) => {
              const now = clock.currentTimeMillisUnsafe()
              // The earliest reopening of candidates `index` and after, `earliest` of those before.
              const reopening = (index: number, earliest: number): Effect.Effect<number> => {
                if (index >= candidates.length) return Effect.succeed(earliest)
                const reopen = cooldownOf(candidates[index]!.name, plan.model)
                return Effect.isEffect(reopen)
                  ? Effect.flatMap(reopen, (at) => reopening(index + 1, Math.min(earliest, at)))
                  : reopening(index + 1, Math.min(earliest, reopen))
              }
              return Effect.flatMap(reopening(0, Number.POSITIVE_INFINITY), (reopen) =>
                reopen <= now || (deadlineAt !== undefined && reopen >= deadlineAt)
                  ? Effect.succeed(false)
                  : // To the clock's reading, not just a timer's length: a round that met the pause's last
                    // millisecond would spend a round and end the request on a CoolingDown that says "retry
                    // after 1 ms".
                    Effect.as(sleepUntil(reopen), true),
              )
            })
      const round = (number: number): Effect.Effect<Answer, PipelineError, Journal> =>
        Effect.catchCause(strategy(candidates, call, plan), (cause) => {
          const error = Cause.findErrorOption(cause)
          const retryable = error._tag === "Some" && isChannelError(error.value) && error.value.failover && number < 4
          if (!retryable || journal.calls() >= maxCalls) return Effect.failCause(cause)
          return Effect.flatMap(waitForReopening, (waited) => (waited ? round(number + 1) : Effect.failCause(cause)))
        })
      const tried = Effect.flatMap(waitForReopening, () => round(1))
      const bounded =
        deadlineAt === undefined
          ? tried
          : Effect.clockWith((clock) =>
              Effect.timeoutOrElse(tried, {
                duration: Math.max(0, deadlineAt - clock.currentTimeMillisUnsafe()),
                orElse: () =>
                  Effect.fail(
                    new Timeout({
                      channel: candidates[0]!.name,
                      message: `request ${plan.id} passed its deadline`,
                    }),
                  ),
              }),
            )
      return Effect.map(bounded, (answer) => generatedIn(journal, plan, answer))
    })
}

const RetryConfig = Schema.Struct({
  attempts: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))).annotate({
    description: `Tries on one channel, the first included (default ${Retry.defaults.attempts})`,
  }),
  base: Schema.optional(DurationMillis).annotate({ description: "First backoff step (default 1s)" }),
  max: Schema.optional(DurationMillis).annotate({ description: "Longest backoff step (default 30s)" }),
  jitter: Schema.optional(Schema.Literals(["full", "none"])).annotate({
    description: "full: a random wait between 0 and the step (default); none: the step itself",
  }),
  maxRetryAfter: Schema.optional(DurationMillis).annotate({
    description:
      "Longest upstream-requested delay (RetryInfo, Retry-After) waited for on that channel; longer moves on (default 60s)",
  }),
}).annotate({ description: "Retry retryable errors on the same channel, with exponential backoff and jitter" })

const HedgeConfig = Schema.Struct({
  after: Schema.Union([DurationMillis, Schema.Literal("auto")]).annotate({
    description:
      "Start the next candidate when the current one has not answered after this long; auto: the channel's observed p95 latency (20s until known)",
  }),
  initial: Schema.optional(DurationMillis).annotate({
    description: "With after: auto, the delay used until a channel's latency is known (default 20s)",
  }),
  budget: Schema.optional(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))).annotate({
    description: "Hedges allowed as a share of calls over the window (default 0.1: at most 10% more calls)",
  }),
  window: Schema.optional(DurationMillis).annotate({ description: "Window of the hedge budget (default 5m)" }),
  grace: Schema.optional(DurationMillis).annotate({
    description:
      "How long a losing call may still finish before it is aborted, so an answer already on its way is priced as billed (default 1s)",
  }),
  sameChannel: Schema.optional(Schema.Boolean).annotate({
    description:
      "When no later candidate is ready (cooling down, circuit open, none), hedge on the same channel, within the budget (default true)",
  }),
}).annotate({ description: "Hedging: race a slow candidate against the next one (or the same channel)" })

const BreakerConfig = Schema.Struct({
  failures: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))).annotate({
    description: "Open after this many consecutive failures (default 5)",
  }),
  errorRate: Schema.optional(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))).annotate({
    description: "Or open when this share of the last `window` calls failed",
  }),
  window: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))).annotate({
    description: "Calls the error rate is measured over (default 20)",
  }),
  open: Schema.optional(DurationMillis).annotate({
    description: "How long an open circuit rejects calls before one probe (default 30s)",
  }),
}).annotate({ description: "A circuit breaker per channel" })

const ChannelLimitsConfig = Schema.Struct({
  rpm: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))).annotate({
    description: "Requests per minute Peel sends this channel (shared by its quota)",
  }),
  concurrency: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))).annotate({
    description: "Calls in flight to this channel at most",
  }),
  quota: Schema.optional(Schema.String).annotate({
    description:
      "Channels naming the same quota (one Google project, one key) share its rate limit and pause together after a 429",
  }),
})

const Config = Schema.Struct({
  timeout: Schema.optional(DurationMillis).annotate({
    description: "Give up on one attempt after this long (e.g. 90s); the HTTP request is aborted",
  }),
  deadline: Schema.optional(DurationMillis).annotate({
    description:
      "Give up on the whole request after this long: retries, failover, hedges and fallback share it (default: none)",
  }),
  maxAttempts: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))).annotate({
    description:
      "Upstream calls one request may make in all, across retries, channels, hedges and fallback (default 10)",
  }),
  adaptiveTimeout: Schema.optional(
    Schema.Union([
      Schema.Literal(false),
      Schema.Struct({
        factor: Schema.optional(Schema.Number.check(Schema.isGreaterThanOrEqualTo(1))).annotate({
          description: `Multiple of the observed p99 latency (default ${Observe.adaptiveDefaults.factor})`,
        }),
        floor: Schema.optional(DurationMillis).annotate({
          description: "Never shorter than this (default 10s)",
        }),
      }),
    ]),
  ).annotate({
    description:
      "With a timeout: once 20 successful calls of a channel for a model and size are known, an attempt there times out after max(floor, factor × p99), at most `timeout` (default on: factor 3, floor 10s; false turns it off)",
  }),
  retry: Schema.optional(RetryConfig),
  hedge: Schema.optional(HedgeConfig),
  breaker: Schema.optional(BreakerConfig),
  channels: Schema.optional(Schema.Record(Schema.String, ChannelLimitsConfig)).annotate({
    description: "Per-channel client-side limits: rpm, concurrency, shared quota",
  }),
}).annotate({
  description:
    "Call the candidates: per-attempt timeout, retry with backoff, circuit breakers, rate limits, hedging, and a deadline per request",
})

/** Default attempt budget of one request. @category defaults */
export const defaultMaxAttempts = 10

/** @category stages */
export const generate: StageDefinition<typeof Config.Type> = {
  key: "generate",
  description: "Call the candidate channels until one returns an image (retry, hedge, breakers, rate limits)",
  schema: Config,
  terminal: true,
  check: (config, pipeline) => unknownChannels(Object.keys(config.channels ?? {}), pipeline.channelNames, ["channels"]),
  make: (config, context) =>
    Effect.gen(function* () {
      const limits: RequestLimits = {
        deadlineAt:
          config.deadline === undefined
            ? () => undefined
            : (journal) => journal.startedAt + (config.deadline as number),
        maxCalls: config.maxAttempts ?? defaultMaxAttempts,
      }
      const stats = yield* ChannelStats
      // Outermost first: breaker (one outcome per channel per request) → retry → gate → observe → call.
      const policies: Array<AttemptPolicy> = []
      let openUntil: (channel: string) => Effect.Effect<number> = () => Effect.succeed(0)
      if (config.breaker !== undefined) {
        const breakers = yield* Breaker.make({
          ...(config.breaker.failures === undefined ? {} : { failures: config.breaker.failures }),
          ...(config.breaker.errorRate === undefined ? {} : { errorRate: config.breaker.errorRate }),
          ...(config.breaker.window === undefined ? {} : { window: config.breaker.window }),
          openMillis: config.breaker.open ?? Breaker.defaults.openMillis,
        })
        openUntil = breakers.openUntil
        policies.push(breakers.policy)
      }
      if (config.retry !== undefined) {
        policies.push(
          Retry.policy(
            {
              attempts: config.retry.attempts ?? Retry.defaults.attempts,
              baseMillis: config.retry.base ?? Retry.defaults.baseMillis,
              maxMillis: config.retry.max ?? Retry.defaults.maxMillis,
              jitter: config.retry.jitter ?? Retry.defaults.jitter,
              maxRetryAfterMillis: config.retry.maxRetryAfter ?? Retry.defaults.maxRetryAfterMillis,
            },
            limits,
          ),
        )
      }
      const gates = yield* Gate.make(config.channels ?? {})
      // Without a breaker, only a quota pause (0 or a time) cools a channel down.
      const cooldownOf = (channel: string, model: string): Effect.Effect<number> =>
        config.breaker === undefined
          ? gates.pausedUntil(channel, model)
          : Effect.map(Effect.zip(openUntil(channel), gates.pausedUntil(channel, model)), ([open, paused]) =>
              Math.max(open, paused),
            )
      const hedgeWindow = config.hedge?.window ?? 300_000
      // One hedge budget per pipeline file, shared by every runner (and process) sharing the state.
      const budgetKey = `peel:hedge:${context.pipelineFile}`
      const budgetService = yield* HedgeBudgetService
      policies.push(
        gates.policy,
        Observe.observe(
          stats,
          config.hedge === undefined
            ? undefined
            : { service: budgetService, key: budgetKey, windowMillis: hedgeWindow },
        ),
      )
      const strategy =
        config.hedge === undefined
          ? sequential(limits.maxCalls)
          : hedged(
              Observe.hedgeDelay(stats, config.hedge.after, config.hedge.initial),
              Observe.hedgeBudget(budgetService, budgetKey, config.hedge.budget ?? 0.1, hedgeWindow),
              limits.maxCalls,
              config.hedge.grace ?? 1000,
              config.hedge.sameChannel === false
                ? undefined
                : (channel, plan) =>
                    Effect.zipWith(
                      cooldownOf(channel.name, plan.model),
                      Clock.currentTimeMillis,
                      (until, now) => until <= now,
                    ),
            )
      const adaptive =
        config.adaptiveTimeout === false
          ? undefined
          : {
              factor: config.adaptiveTimeout?.factor ?? Observe.adaptiveDefaults.factor,
              floorMillis: config.adaptiveTimeout?.floor ?? Observe.adaptiveDefaults.floorMillis,
            }
      return {
        handler: makeHandler(context, {
          timeoutMillis: Observe.attemptTimeout(stats, config.timeout, adaptive),
          policies,
          strategy,
          limits,
          cooldownOf,
        }),
      }
    }),
}
