/**
 * Where the CLI finds channel plugins: first-party `@peel/channel-*` packages are dependencies of this
 * package, so they resolve from here even when the pipeline lives elsewhere.
 *
 * @since 0.1.0
 */
import type { Pipeline } from "@peel/core"

/** Load options every command uses. */
export const loadOptions: Pipeline.LoadOptions = { resolveFrom: [import.meta.filename] }
