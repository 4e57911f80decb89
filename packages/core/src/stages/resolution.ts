/**
 * `resolution`: map the request's `use` to an image size; an explicit `size` wins. Planning only.
 *
 * @since 0.1.0
 */

import { Sizes } from "@peel/contract/Catalog"
import { Schema } from "effect"
import { planning, type StageDefinition } from "../engine/Stage.ts"

const Config = Schema.Record(Schema.String, Schema.Literals(Sizes)).annotate({
  description: "Map `use` (hero, print, thumbnail, ...) to a size; `default` for everything else",
  examples: [{ hero: "4K", print: "4K", "large-display": "4K", default: "2K" }],
})

/** @category stages */
export const resolution: StageDefinition<typeof Config.Type> = {
  key: "resolution",
  description: "Map the request's `use` to an image size (explicit `size` wins)",
  schema: Config,
  make: (config) =>
    planning((draft) => {
      if (draft.size !== undefined) return draft
      const use = draft.request.use
      const size = (use !== undefined && Object.hasOwn(config, use) ? config[use] : undefined) ?? config.default
      return size === undefined ? draft : { ...draft, size }
    }),
}
