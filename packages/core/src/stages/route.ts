/**
 * `route`: map the request's `priority` to a model; an explicit `model` wins. Planning only.
 *
 * @since 0.1.0
 */

import { findModel } from "@peel/contract/Catalog"
import { Schema } from "effect"
import { type Finding, planning, type StageDefinition } from "../engine/Stage.ts"
import { withModel } from "../plan/Plan.ts"

const Config = Schema.Struct({
  high: Schema.optional(Schema.String),
  normal: Schema.optional(Schema.String),
  low: Schema.optional(Schema.String),
  default: Schema.optional(Schema.String),
}).annotate({
  description: "Map `priority` to a model id; `default` for the rest",
  examples: [{ low: "gemini-3.1-flash-image", default: "gemini-3-pro-image" }],
})

const unknownModels = (config: typeof Config.Type): ReadonlyArray<Finding> =>
  Object.entries(config).flatMap(([key, model]) =>
    model === undefined || findModel(model) !== undefined
      ? []
      : [
          {
            path: [key],
            message: `unknown model "${model}": Peel has no price or size table for it`,
            severity: "warning" as const,
          },
        ],
  )

/** @category stages */
export const route: StageDefinition<typeof Config.Type> = {
  key: "route",
  description: "Map the request's `priority` to a model (explicit `model` wins)",
  schema: Config,
  check: unknownModels,
  make: (config, context) =>
    planning((draft) => {
      if (draft.model !== undefined) return draft
      const model = config[draft.request.priority ?? "normal"] ?? config.default
      return model === undefined ? draft : withModel(draft, model, context.today)
    }),
}
