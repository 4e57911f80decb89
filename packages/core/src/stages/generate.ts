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
import { Cause, Clock, Effect, Exit, Schema } from "effect"
import type { Channel, ChannelImage, ChannelRequest } from "../Channel.ts"
import { DurationMillis } from "../Duration.ts"
import {
  type ChannelError,
  isChannelError,
  MalformedResponse,
  NoChannel,
  type PipelineError,
  Timeout,
} from "../Errors.ts"
import { type ImageInfo, inspectImage } from "../Image.ts"
import { Journal } from "../Journal.ts"
import type { Plan } from "../Plan.ts"
import { attemptCost } from "../Pricing.ts"
import type { Generated, Handler, StageContext, StageDefinition } from "../Stage.ts"

/** A checked answer from one call, with its index in the journal. @category model */
export interface Answer {
  readonly channel: Channel
  readonly image: ChannelImage
  readonly info: ImageInfo
  readonly index: number
}

/** One call to one channel for one plan. @category model */
export type Call = (channel: Channel, plan: Plan) => Effect.Effect<Answer, ChannelError, Journal>

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
  readonly fallback?: boolean
}

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
  (timeoutMillis: number | undefined, markers: CallMarkers = {}): Call =>
  (channel, plan) =>
    Effect.flatMap(Clock.currentTimeMillis, (startedAt) => {
      const request: ChannelRequest = plan.channelRequest
      const generate = channel.generate(request)
      const bounded =
        timeoutMillis === undefined
          ? generate
          : Effect.timeoutOrElse(generate, {
              duration: timeoutMillis,
              orElse: () =>
                Effect.fail(new Timeout({ channel: channel.name, message: `no answer within ${timeoutMillis} ms` })),
            })
      let index = -1
      return bounded.pipe(
        Effect.flatMap((image) => checkImage(channel, image)),
        Effect.onExit((exit) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            Journal.useSync((journal) => {
              const billing = Exit.isSuccess(exit)
                ? exit.value.image
                : Cause.findErrorOption(exit.cause).pipe((option) =>
                    option._tag === "Some" ? option.value : undefined,
                  )
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
                costUsd: attemptCost(channel, request, billing, Exit.isSuccess(exit)),
                try: journal.callsTo(channel.name) + 1,
                ...(markers.hedge === true ? { hedge: true } : {}),
                ...(markers.fallback === true ? { fallback: true } : {}),
              })
            }),
          ),
        ),
        Effect.map((answer) => ({ ...answer, index })),
      )
    })

/**
 * Sequential failover: each candidate in turn; an error another channel might not have (`failover`)
 * moves on, `Rejected` and `ContentBlocked` stop at once.
 *
 * @category strategies
 */
export const sequential: Strategy = (candidates, call, plan) =>
  Effect.gen(function* () {
    let lastError: ChannelError | undefined
    for (const channel of candidates) {
      const exit = yield* Effect.exit(call(channel, plan))
      if (Exit.isSuccess(exit)) return exit.value
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "None" || !isChannelError(error.value)) return yield* Effect.failCause(exit.cause)
      lastError = error.value
      if (!lastError.failover) break
    }
    if (lastError !== undefined) return yield* Effect.fail(lastError)
    return yield* noChannel(plan)
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
  Journal.useSync((journal) => {
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
  })

/** Turn the winning answer into what the runner writes, marking it in the journal. @category attempts */
export const generated = (plan: Plan, answer: Answer): Effect.Effect<Generated, never, Journal> =>
  Journal.useSync((journal) => {
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
  })

/**
 * The terminal handler: record refusals, try the candidates with `strategy`, each call wrapped by
 * `policies` (outermost first).
 *
 * @category constructors
 */
export const makeHandler = (
  context: StageContext,
  options: {
    readonly timeoutMillis?: number | undefined
    readonly policies?: ReadonlyArray<AttemptPolicy>
    readonly strategy?: Strategy
  } = {},
): Handler => {
  const call = (options.policies ?? []).reduceRight<Call>(
    (inner, policy) => policy(inner),
    callChannel(options.timeoutMillis),
  )
  const strategy = options.strategy ?? sequential
  return (plan) =>
    Effect.gen(function* () {
      if (plan.refused.length > 0) yield* recordRefusals(plan)
      const candidates = plan.candidates.map((name) => context.channels.get(name)!)
      if (candidates.length === 0) return yield* noChannel(plan)
      const answer = yield* strategy(candidates, call, plan)
      return yield* generated(plan, answer)
    })
}

const Config = Schema.Struct({
  timeout: Schema.optional(DurationMillis).annotate({
    description: "Give up on one attempt after this long (e.g. 90s); the HTTP request is aborted",
  }),
}).annotate({ description: "Call the candidate channels in order until one returns an image" })

/** @category stages */
export const generate: StageDefinition<typeof Config.Type> = {
  key: "generate",
  description: "Call the candidate channels in order until one returns an image",
  schema: Config,
  terminal: true,
  make: (config, context) => Effect.succeed({ handler: makeHandler(context, { timeoutMillis: config.timeout }) }),
}
