/**
 * The one path every route takes from an {@link ImageRequest} to an answer: check the request, plan it
 * once (reference images read once), price the plan, admit it with the {@link KeyPolicy}, run it through
 * the pipeline's runner, settle the admission with what it cost, publish one {@link GatewayEvent}.
 *
 * **A paid run is never wasted.** The run is started outside the HTTP request's fiber: a client that
 * disconnects (its request fiber interrupted) stops waiting, not the run. The run finishes, its image goes
 * to the pipeline's cache (when it has a `cache` stage), the admission is settled with the real cost, and
 * the client's retry is answered from the cache at $0. Runs still in flight when the gateway stops are
 * waited for (see {@link ExecuteShape.drain}).
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import { Errors as ContractErrors } from "@peel/contract"
import type { PipelineError } from "@peel/contract/Errors"
import { Estimate, Request, type Runner, VirtualKeys } from "@peel/core"
import { Cause, Context, Effect, Exit, Fiber, FiberSet, Layer, Result, type Scope } from "effect"
import {
  BadRequest,
  type GatewayError,
  httpStatus,
  PipelineBudgetExhausted,
  SafetyBlocked,
  Unavailable,
} from "./Errors.ts"
import { GatewayEvents } from "./Events.ts"
import { type Admission, anonymous, type Caller, KeyPolicy } from "./KeyPolicy.ts"

/** Optional routing hints a client may send beside the request (`x-peel-use`, `x-peel-priority`). @category models */
export interface Hints {
  /** Intended use (`thumbnail`, `hero`, `print`, ...): picks the size when the request gives none. */
  readonly use?: string | undefined
  /** `high` | `normal` | `low`: picks the model when the request names none. */
  readonly priority?: string | undefined
}

/** @category models */
export interface ExecuteInput {
  /** The route's name, for events and the access log (`gemini.generateContent`). */
  readonly route: string
  /** The gateway's id of this HTTP request ({@link newRequestId}); it becomes the ImageRequest's id. */
  readonly requestId: string
  readonly caller: Caller
  /** The request as the wire mapped it: decoded strictly again here (bad fields are a 400). */
  readonly request: unknown
  readonly hints?: Hints | undefined
}

/** One image of an answer. @category models */
export interface OutcomeImage {
  readonly bytes: Uint8Array
  readonly mimeType: string
  readonly width: number
  readonly height: number
  /** A fallback placeholder (no upstream made it, $0). */
  readonly placeholder: boolean
}

/** A request that made its image(s). @category models */
export interface Outcome {
  readonly requestId: string
  readonly images: ReadonlyArray<OutcomeImage>
  /** The model's text beside the image(s), when it gave one. */
  readonly text?: string | undefined
  /** What the whole request cost upstream (billed failures included); 0 for a cache hit. */
  readonly costUsd: number
  /** The channel(s) that made the image(s), comma-separated when several did. */
  readonly channel: string
  /** The model that made the image(s). */
  readonly model: string
  readonly size: string
  readonly aspectRatio: string
  /** Upstream calls made (cache hits and placeholders are none). */
  readonly attempts: number
  readonly cache: "hit" | "miss" | "coalesced"
  readonly usage?: Request.Usage | undefined
  readonly latencyMs: number
}

/** @category models */
export interface ExecuteShape {
  readonly runner: Runner.RunnerShape
  readonly execute: (input: ExecuteInput) => Effect.Effect<Outcome, GatewayError>
  /** Runs in flight (started and not yet settled). */
  readonly inFlight: Effect.Effect<number>
  /** Wait until every run in flight has finished and settled. */
  readonly drain: Effect.Effect<void>
}

/** @category services */
export class Execute extends Context.Service<Execute, ExecuteShape>()("@peel/gateway/Execute") {}

/** A fresh request id: `req-` and 20 hex digits (a valid ImageRequest id). @category ids */
export const newRequestId = (): string => `req-${randomBytes(10).toString("hex")}`

/** The `x-peel-*` headers of an answer (and `x-peel-placeholder: true` when a fallback placeholder stands in). @category headers */
export const peelHeaders = (outcome: Outcome): Record<string, string> => ({
  "x-peel-request-id": outcome.requestId,
  "x-peel-cost-usd": costText(outcome.costUsd),
  "x-peel-channel": outcome.channel,
  "x-peel-model": outcome.model,
  "x-peel-attempts": String(outcome.attempts),
  "x-peel-cache": outcome.cache,
  ...(outcome.images.some((image) => image.placeholder) ? { "x-peel-placeholder": "true" } : {}),
})

/**
 * The `x-peel-*` headers of an answer that made no image (an error): what the request cost anyway (billed
 * failures), which channel and model it got to, if any. @category headers
 */
export const failureHeaders = (requestId: string, failure?: FailureInfo): Record<string, string> => ({
  "x-peel-request-id": requestId,
  "x-peel-cost-usd": costText(failure?.costUsd ?? 0),
  "x-peel-channel": failure?.channel ?? "none",
  "x-peel-model": failure?.model ?? "none",
  "x-peel-attempts": String(failure?.attempts ?? 0),
  "x-peel-cache": "none",
})

/** What a failed request used, carried on its error for the headers. @category models */
export interface FailureInfo {
  readonly costUsd: number
  readonly channel?: string | undefined
  readonly model?: string | undefined
  readonly attempts: number
}

const failureInfos = new WeakMap<object, FailureInfo>()

/** What a failed request used, when the error came from a run. @category models */
export const failureOf = (error: GatewayError): FailureInfo | undefined => failureInfos.get(error)

const published = new WeakSet<object>()

/** True when {@link Execute} already published the event of this error (a route must not publish it again). @category events */
export const wasPublished = (error: GatewayError): boolean => published.has(error)

const costText = (usd: number): string => (Math.round(usd * 1e6) / 1e6).toFixed(6)

/** Upstream calls among a request's attempts: refusals, cache hits and placeholders are none. */
const callsOf = (attempts: ReadonlyArray<Request.Attempt>): number =>
  attempts.filter(
    (attempt) => attempt.cached !== true && attempt.placeholder !== true && attempt.outcome !== "Unsupported",
  ).length

/** Retry-After for a failed run: the longest delay an upstream asked for, else 10 s; at most 5 minutes. */
const retryAfterSecondsOf = (failure: Runner.RunFailure): number => {
  const asked = [
    ...failure.attempts.map((attempt) => attempt.retryAfterMs ?? 0),
    "retryAfterMs" in failure.error ? (failure.error.retryAfterMs ?? 0) : 0,
  ]
  const longest = Math.max(0, ...asked)
  return longest === 0 ? 10 : Math.min(300, Math.max(1, Math.ceil(longest / 1000)))
}

/**
 * A pipeline's error as a gateway error: a safety block stays a safety block, a request no channel accepts
 * is a 400, the pipeline's own budget a 429, and every other failure (each path failed, no placeholder) a
 * 503 with Retry-After. Messages are redacted (no base64, no secret).
 *
 * @category errors
 */
export const fromPipelineError = (error: PipelineError, failure?: Runner.RunFailure): GatewayError => {
  const message = ContractErrors.redact(error.message)
  switch (error._tag) {
    case "ContentBlocked":
      return new SafetyBlocked({ reason: error.reason, message: `blocked for safety: ${error.reason}` })
    case "InvalidRequest":
    case "Rejected":
    case "Unsupported":
      return new BadRequest({ message })
    case "BudgetExceeded":
      return new PipelineBudgetExhausted({
        retryAfterSeconds: 60,
        message: `the pipeline's spend budget is exhausted (${message})`,
      })
    default:
      return new Unavailable({
        retryAfterSeconds: failure === undefined ? 10 : retryAfterSecondsOf(failure),
        message: `no channel could make the image: ${error._tag}: ${message}`,
      })
  }
}

const priorities = new Set(["high", "normal", "low"])

const withHints = (request: unknown, hints: Hints | undefined): Result.Result<unknown, string> => {
  if (hints === undefined || typeof request !== "object" || request === null) return Result.succeed(request)
  const fields = request as Record<string, unknown>
  const added: Record<string, unknown> = {}
  if (hints.use !== undefined && fields.use === undefined) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(hints.use))
      return Result.fail("x-peel-use must be 1-64 letters, digits, '.', '_' or '-'")
    added.use = hints.use
  }
  if (hints.priority !== undefined && fields.priority === undefined) {
    if (!priorities.has(hints.priority)) return Result.fail("x-peel-priority must be high, normal or low")
    added.priority = hints.priority
  }
  return Result.succeed({ ...fields, ...added })
}

interface Ran {
  readonly results: ReadonlyArray<Request.ImageResult>
  readonly failures: ReadonlyArray<Runner.RunFailure>
}

/**
 * Build the executor over a runner. Runs are forked into this Scope: closing it waits for the runs in
 * flight (they are paid; their images reach the cache) before the runner closes.
 *
 * @category constructors
 */
export const make = Effect.fn("Execute.make")(function* (
  runner: Runner.RunnerShape,
): Effect.fn.Return<ExecuteShape, never, KeyPolicy | GatewayEvents | Scope.Scope> {
  const policy = yield* KeyPolicy
  const events = yield* GatewayEvents
  const runs = yield* FiberSet.make<unknown, never>()
  // Wait for runs in flight before the Scope closes the runner (registered after the FiberSet, so it runs first).
  yield* Effect.addFinalizer(() => FiberSet.awaitEmpty(runs))

  const execute = (input: ExecuteInput): Effect.Effect<Outcome, GatewayError> =>
    Effect.gen(function* () {
      const startedAt = Date.now()
      const fail = (error: GatewayError, info?: FailureInfo, model?: string) =>
        Effect.gen(function* () {
          if (info !== undefined) failureInfos.set(error, info)
          published.add(error)
          yield* events.publish({
            requestId: input.requestId,
            route: input.route,
            keyName: input.caller.name,
            model: info?.model ?? model,
            channel: info?.channel,
            status: httpStatus(error),
            latencyMs: Date.now() - startedAt,
            costUsd: info?.costUsd ?? 0,
            cache: "none",
            attempts: info?.attempts ?? 0,
            error: error._tag,
            images: 0,
            startedAt,
          })
          return yield* Effect.fail(error)
        })

      const hinted = withHints(input.request, input.hints)
      if (Result.isFailure(hinted)) return yield* fail(new BadRequest({ message: hinted.failure }))
      const decoded = Request.decodeRequest({ ...(hinted.success as object), id: input.requestId })
      if (Result.isFailure(decoded)) return yield* fail(new BadRequest({ message: decoded.failure }))
      // The virtual key's name rides in the metadata (not part of the identity) to the call log's lines.
      const request =
        input.caller.keyId === anonymous.keyId
          ? decoded.success
          : {
              ...decoded.success,
              metadata: { ...decoded.success.metadata, [VirtualKeys.metadataField]: input.caller.name },
            }
      const asked = request.model

      const planned = yield* runner.prepare(request)
      let estimateUsd = 0
      for (const item of planned) {
        if ("_tag" in item.plan) return yield* fail(new BadRequest({ message: item.plan.message }), undefined, asked)
        estimateUsd += Estimate.expectedPrice(item.plan, runner.channels) ?? 0
      }
      const firstPlan = planned[0]?.plan
      const plannedModel = firstPlan !== undefined && !("_tag" in firstPlan) ? firstPlan.model : asked

      // The run: outside the HTTP request's fiber, settled exactly once, whatever the client does.
      const runOf = (admission: Admission): Effect.Effect<Ran> =>
        Effect.forEach(planned, (item) => Effect.exit(runner.runPlanned(item)), {
          concurrency: "unbounded",
        }).pipe(
          Effect.map((exits) => {
            const results: Array<Request.ImageResult> = []
            const failures: Array<Runner.RunFailure> = []
            for (const exit of exits) {
              if (Exit.isSuccess(exit)) results.push(exit.value)
              else {
                const found = Cause.findErrorOption(exit.cause)
                if (found._tag === "Some") failures.push(found.value)
              }
            }
            return { results, failures }
          }),
          Effect.tap((ran) =>
            admission.settle(
              ran.results.reduce((sum, result) => sum + result.costUsd, 0) +
                ran.failures.reduce((sum, failure) => sum + failure.costUsd, 0),
            ),
          ),
          Effect.onInterrupt(() => admission.release),
        )
      // Admitted and started as one step no interruption can split: an admission is never left unsettled.
      const fiber = yield* Effect.uninterruptible(
        policy
          // With no model asked for (`models/auto`), the model routing picked is the one a key's allow-list checks.
          .admit(
            input.caller,
            asked === undefined && plannedModel !== undefined ? { ...request, model: plannedModel } : request,
            estimateUsd,
          )
          .pipe(Effect.flatMap((admission) => FiberSet.run(runs, Effect.interruptible(runOf(admission))))),
      ).pipe(Effect.catch((error) => fail(error, undefined, plannedModel)))
      const ran = yield* Fiber.join(fiber).pipe(
        Effect.onInterrupt(() =>
          // The client left: publish the request's event once the run has finished, with what it cost.
          FiberSet.run(
            runs,
            Fiber.join(fiber).pipe(
              Effect.flatMap((done) => events.publish(eventOf(input, startedAt, done, plannedModel, 499))),
            ),
          ).pipe(Effect.asVoid),
        ),
      )
      const costUsd =
        ran.results.reduce((sum, result) => sum + result.costUsd, 0) +
        ran.failures.reduce((sum, failure) => sum + failure.costUsd, 0)
      const attempts =
        ran.results.reduce((sum, result) => sum + callsOf(result.attempts), 0) +
        ran.failures.reduce((sum, failure) => sum + callsOf(failure.attempts), 0)
      if (ran.results.length === 0) {
        const failure = ran.failures[0]
        const error =
          failure === undefined
            ? new Unavailable({ retryAfterSeconds: 10, message: "the run ended without a result" })
            : fromPipelineError(failure.error, failure)
        const lastAttempt = failure?.attempts.at(-1)
        return yield* fail(error, {
          costUsd,
          attempts,
          channel: lastAttempt?.channel,
          model: lastAttempt?.model ?? plannedModel,
        })
      }
      const outcome = outcomeOf(input.requestId, ran.results, costUsd, attempts, startedAt)
      yield* events.publish(eventOf(input, startedAt, ran, plannedModel, 200))
      return outcome
    })

  return {
    runner,
    execute,
    inFlight: FiberSet.size(runs),
    drain: FiberSet.awaitEmpty(runs),
  }
})

const eventOf = (
  input: ExecuteInput,
  startedAt: number,
  ran: Ran,
  model: string | undefined,
  okStatus: number,
): import("./Events.ts").GatewayEvent => {
  const costUsd =
    ran.results.reduce((sum, result) => sum + result.costUsd, 0) +
    ran.failures.reduce((sum, failure) => sum + failure.costUsd, 0)
  const attempts =
    ran.results.reduce((sum, result) => sum + callsOf(result.attempts), 0) +
    ran.failures.reduce((sum, failure) => sum + callsOf(failure.attempts), 0)
  const failure = ran.failures[0]
  const error =
    ran.results.length === 0 && failure !== undefined ? fromPipelineError(failure.error, failure) : undefined
  const channels = [...new Set(ran.results.map((result) => result.channel))]
  return {
    requestId: input.requestId,
    route: input.route,
    keyName: input.caller.name,
    model: ran.results[0]?.model ?? model,
    channel: channels.length === 0 ? undefined : channels.join(","),
    status: okStatus === 499 ? 499 : error === undefined ? okStatus : httpStatus(error),
    latencyMs: Date.now() - startedAt,
    costUsd,
    cache: ran.results.length > 0 && ran.results.every((result) => result.cached) ? "hit" : "miss",
    attempts,
    error: error?._tag,
    images: ran.results.length,
    startedAt,
  }
}

const outcomeOf = (
  requestId: string,
  results: ReadonlyArray<Request.ImageResult>,
  costUsd: number,
  attempts: number,
  startedAt: number,
): Outcome => {
  const first = results[0]!
  const channels = [...new Set(results.map((result) => result.channel))]
  const texts = results.map((result) => result.text).filter((text): text is string => text !== undefined && text !== "")
  return {
    requestId,
    images: results.map((result) => ({
      bytes: result.bytes,
      mimeType: result.mimeType,
      width: result.width,
      height: result.height,
      placeholder: result.placeholder,
    })),
    ...(texts.length === 0 ? {} : { text: texts.join("\n") }),
    costUsd,
    channel: channels.join(","),
    model: first.model,
    size: first.size,
    aspectRatio: first.aspectRatio,
    attempts,
    cache: results.every((result) => result.cached) ? "hit" : "miss",
    ...(first.usage === undefined ? {} : { usage: first.usage }),
    latencyMs: Date.now() - startedAt,
  }
}

/** The executor as a Layer over a runner. @category layers */
export const layer = (runner: Runner.RunnerShape): Layer.Layer<Execute, never, KeyPolicy | GatewayEvents> =>
  Layer.effect(Execute, make(runner))
