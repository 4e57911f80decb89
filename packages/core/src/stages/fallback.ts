/**
 * `fallback`: ordered alternatives for when everything after this stage failed with an error another
 * model or channel might not have — typically the current Flash image model (its own quota) on the
 * channels that serve it, then a placeholder image. An alternative re-plans the request (model,
 * channels) and runs the same inner stages with the same journal, so the request's deadline and attempt
 * budget are shared: a fallback never restarts the retry cycle, and nothing can loop.
 *
 * A placeholder is a checked-in image or a generated neutral image of the requested pixel size, marked
 * `placeholder: true`, costs $0, and is never cached. A safety block or a rejected request never falls
 * back: another model would be asked the same thing.
 *
 * @since 0.2.0
 */
import { isAbsolute, resolve } from "node:path"
import { dimensionsOf, findModel } from "@peel/contract/Catalog"
import { ConfigError, ConfigProblem, type PipelineError } from "@peel/contract/Errors"
import { type ImageInfo, inspectImage } from "@peel/contract/Image"
import { Clock, Effect, Schema } from "effect"
import { Journal } from "../engine/AttemptJournal.ts"
import type { Finding, Generated, Handler, StageDefinition } from "../engine/Stage.ts"
import * as Files from "../internal/Files.ts"
import { greyPng } from "../output/Placeholder.ts"
import { type Draft, finish, type Plan } from "../plan/Plan.ts"
import { unknownChannels } from "./select.ts"

const Alternative = Schema.Union([
  Schema.Struct({
    model: Schema.String.annotate({ description: "Model to try instead (e.g. gemini-3.1-flash-image)" }),
    channels: Schema.optional(Schema.Array(Schema.String)).annotate({
      description: "Channels to try it on, in order (default: the request's candidates)",
    }),
  }),
  Schema.Struct({
    placeholder: Schema.String.annotate({
      description: "`generated` for a neutral grey image of the requested pixel size, or a path to an image file",
    }),
  }),
])

const Config = Schema.Array(Alternative).annotate({
  description: "Alternatives, in order, when everything after this stage failed: another model, then a placeholder",
  examples: [[{ model: "gemini-3.1-flash-image", channels: ["google"] }, { placeholder: "generated" }]],
})

/** Errors after which an alternative is tried: a failure of the upstream, not of the request itself. */
const fallsBack = (error: PipelineError): boolean => {
  switch (error._tag) {
    case "NoChannel":
      return true
    case "Rejected":
    case "ContentBlocked":
    case "BudgetExceeded":
    case "InvalidRequest":
    case "OutputError":
      return false
    default:
      return error.failover
  }
}

const placeholderOf = (
  bytes: Uint8Array | undefined,
  plan: Plan,
): { readonly bytes: Uint8Array; readonly info: ImageInfo } => {
  if (bytes !== undefined) return { bytes, info: inspectImage(bytes)! }
  const [width, height] = dimensionsOf(plan.model, plan.size, plan.aspectRatio) ?? [1024, 1024]
  const generated = greyPng(width, height)
  return { bytes: generated, info: { mimeType: "image/png", width, height } }
}

/** @category stages */
export const fallback: StageDefinition<typeof Config.Type> = {
  key: "fallback",
  description:
    "Alternatives when everything after this stage failed: another model on some channels, then a placeholder",
  schema: Config,
  check: (config, pipeline) =>
    config.flatMap((alternative, index): ReadonlyArray<Finding> => {
      if ("model" in alternative) {
        const unknown =
          findModel(alternative.model) === undefined
            ? [
                {
                  path: [index, "model"],
                  message: `unknown model "${alternative.model}": Peel has no price or size table for it`,
                  severity: "warning" as const,
                },
              ]
            : []
        return [...unknown, ...unknownChannels(alternative.channels ?? [], pipeline.channelNames, [index, "channels"])]
      }
      return []
    }),
  make: (config, context) =>
    Effect.gen(function* () {
      // Load checked-in placeholder files once, and check they are images.
      const files = new Map<number, Uint8Array>()
      for (const [index, alternative] of config.entries()) {
        if (!("placeholder" in alternative) || alternative.placeholder === "generated") continue
        const path = isAbsolute(alternative.placeholder)
          ? alternative.placeholder
          : resolve(context.pipelineDir, alternative.placeholder)
        const problem = (message: string) =>
          new ConfigError({
            file: context.pipelineFile,
            problems: [
              new ConfigProblem({ file: context.pipelineFile, line: 1, column: 1, severity: "error", message }),
            ],
          })
        const bytes = yield* Files.readBytes(path).pipe(
          Effect.provide(Files.layerNode),
          Effect.mapError((error) => problem(`fallback placeholder ${path} cannot be read: ${Files.reasonOf(error)}`)),
        )
        if (inspectImage(bytes) === undefined)
          return yield* problem(`fallback placeholder ${path} is not a PNG, JPEG, WebP or GIF image`)
        files.set(index, new Uint8Array(bytes))
      }

      const around = (next: Handler): Handler => {
        const tryFrom =
          (index: number, plan: Plan, original: Plan) =>
          (error: PipelineError): Effect.Effect<Generated, PipelineError, Journal> => {
            const alternative = config[index]
            if (alternative === undefined || !fallsBack(error)) return Effect.fail(error)
            if ("placeholder" in alternative) {
              // The placeholder has the pixel size the request asked for, not a fallback model's.
              const image = placeholderOf(files.get(index), original)
              return Effect.flatMap(Clock.currentTimeMillis, (now) =>
                Journal.useSync((journal) => {
                  const recorded = journal.record({
                    channel: "placeholder",
                    model: plan.model,
                    size: plan.size,
                    startedAt: now,
                    latencyMs: 0,
                    outcome: "ok",
                    message: `placeholder after ${error._tag}: ${error.message}`,
                    costUsd: 0,
                    fallback: true,
                    placeholder: true,
                  })
                  journal.markWon(recorded)
                  return {
                    channel: "placeholder",
                    model: original.model,
                    size: original.size,
                    aspectRatio: original.aspectRatio,
                    image: { bytes: image.bytes, mimeType: image.info.mimeType },
                    info: image.info,
                    cached: false,
                    placeholder: true,
                  }
                }),
              )
            }
            const draft: Draft = {
              id: plan.id,
              request: plan.request,
              model: alternative.model,
              size: plan.size,
              aspectRatio: plan.aspectRatio,
              candidates: alternative.channels ?? [
                ...plan.candidates,
                ...plan.refused.map((refused) => refused.channel),
              ],
              adjustments: [
                ...plan.adjustments,
                {
                  field: "model",
                  from: plan.model,
                  to: alternative.model,
                  reason: `fallback after ${error._tag}: ${error.message}`,
                },
              ],
            }
            const alternativePlan: Plan = { ...finish(draft, context.channels, plan.limits), fallback: true }
            return next(alternativePlan).pipe(Effect.catch(tryFrom(index + 1, alternativePlan, original)))
          }
        // The primary plan leaves a quarter of the deadline to the alternatives (a placeholder needs none).
        const modelAlternatives = config.filter((alternative) => "model" in alternative).length
        return (plan) =>
          next(modelAlternatives === 0 ? plan : { ...plan, deadlineShare: 0.75 }).pipe(
            Effect.catch(tryFrom(0, plan, plan)),
          )
      }
      return { around }
    }),
}
