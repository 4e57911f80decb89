/**
 * Where the CLI finds channel plugins. The first-party `@peel/channel-*` plugins are this package's own: a
 * pipeline naming one (`plugin: google-ai-studio` or `plugin: "@peel/channel-google-ai-studio"`) gets the one
 * the `peel` command ships with, imported when first named. In the published command (one bundle, `effect`
 * inlined) that keeps every plugin on the bundle's copy of `effect` instead of loading a second one from
 * `node_modules`. Any other plugin (a package or a `./file`) is resolved from the pipeline's folder, the
 * working directory, then this package.
 *
 * @since 0.1.0
 */
import type { Pipeline } from "@peel/core"

type PluginImport = () => Promise<{ readonly default?: unknown }>

const firstParty: ReadonlyArray<readonly [string, PluginImport]> = [
  ["google-ai-studio", () => import("@peel/channel-google-ai-studio")],
  ["google-batch", () => import("@peel/channel-google-batch")],
  ["openai-compatible", () => import("@peel/channel-openai-compatible")],
  ["openrouter", () => import("@peel/channel-openrouter")],
  ["vertex-ai", () => import("@peel/channel-vertex-ai")],
]

/** The first-party plugins by both names a pipeline may use. */
export const pluginImports: Readonly<Record<string, PluginImport>> = Object.fromEntries(
  firstParty.flatMap(([name, load]) => [
    [name, load],
    [`@peel/channel-${name}`, load],
  ]),
)

/** Load options every command uses. */
export const loadOptions: Pipeline.LoadOptions = { pluginImports, resolveFrom: [import.meta.filename] }

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
