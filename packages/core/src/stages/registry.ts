/**
 * Every stage this core knows, by YAML key, in the order the docs list them.
 *
 * @since 0.2.0
 */
import { type RegisteredStage, register } from "../engine/Stage.ts"
import { budget } from "./budget.ts"
import { cache } from "./cache.ts"
import { fallback } from "./fallback.ts"
import { generate } from "./generate.ts"
import { resolution } from "./resolution.ts"
import { route } from "./route.ts"
import { select } from "./select.ts"

/** @category stages */
export const definitions: ReadonlyArray<RegisteredStage> = [
  register(resolution),
  register(route),
  register(cache),
  register(budget),
  register(fallback),
  register(select),
  register(generate),
]
