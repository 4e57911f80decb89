/**
 * Where the CLI finds channel plugins: first-party `@peel/channel-*` packages are dependencies of this
 * package, so they resolve from here even when the pipeline lives elsewhere.
 *
 * @since 0.1.0
 */
import type { Pipeline } from "@peel/core"

/** Load options every command uses. */
export const loadOptions: Pipeline.LoadOptions = { resolveFrom: [import.meta.filename] }

/** {@link loadOptions} with the stores named by flags (`--redis URL`, `--postgres URL`), which win over the pipeline's `state:`. */
export const loadOptionsWith = (flags: {
  readonly redis?: string | undefined
  readonly postgres?: string | undefined
}): Pipeline.LoadOptions =>
  flags.redis === undefined && flags.postgres === undefined
    ? loadOptions
    : {
        ...loadOptions,
        stores: {
          ...(flags.redis === undefined ? {} : { redis: flags.redis }),
          ...(flags.postgres === undefined ? {} : { postgres: flags.postgres }),
        },
      }
