/**
 * Building channels from plugins: strict decoding of a channel's YAML block with the plugin's own
 * Schema, and `make` in the caller's Scope. The loader and the conformance suite both go through here,
 * so a plugin is always checked the same way.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema, type Scope } from "effect"
import {
  type AnyChannelPlugin,
  acceptedVersions,
  type Channel,
  type ChannelPlugin,
  type MakeContext,
  specificationVersion,
} from "./Channel.ts"
import { ConfigError, ConfigProblem, type MissingSecret } from "./Errors.ts"
import { flattenIssues, type PathIssue } from "./Issues.ts"

/** Options that make decoding strict: every issue, unknown keys are errors. @category decoding */
export const strict = { errors: "all", onExcessProperty: "error" } as const

/**
 * Decode a channel block (without its `plugin` key) with the plugin's Schema. Fails with every problem,
 * each with its path inside the block.
 *
 * @category decoding
 */
export const decodeConfig = <Config>(
  plugin: ChannelPlugin<Config> | AnyChannelPlugin,
  block: unknown,
): Result.Result<Config, ReadonlyArray<PathIssue>> => {
  const decoded = Schema.decodeUnknownResult(plugin.config as unknown as Schema.Decoder<Config, never>)(block, strict)
  return Result.isSuccess(decoded) ? Result.succeed(decoded.success) : Result.fail(flattenIssues(decoded.failure))
}

/**
 * Check that a module's default export is a channel plugin this core understands. Returns the reason
 * when it is not.
 *
 * @category decoding
 */
export const checkPlugin = (candidate: unknown): string | undefined => {
  if (typeof candidate !== "object" || candidate === null) return "its default export is not an object"
  const plugin = candidate as Partial<ChannelPlugin>
  if (typeof plugin.specificationVersion !== "number" || !acceptedVersions.includes(plugin.specificationVersion))
    return `it implements channel specification ${String(plugin.specificationVersion)}, this core accepts ${acceptedVersions.join(" and ")} (current: ${specificationVersion})`
  if (typeof plugin.name !== "string" || typeof plugin.make !== "function" || plugin.config === undefined)
    return "its default export lacks name, config or make"
  return undefined
}

/**
 * Decode `block` and build the channel in the current Scope. Decoding problems become a plain list of
 * `path: message` lines in a `ConfigError` for `file` (the loader reports them with positions instead).
 *
 * @category building
 */
export const build = <Config>(
  plugin: ChannelPlugin<Config>,
  block: unknown,
  context: MakeContext,
): Effect.Effect<Channel, ConfigError | MissingSecret, Scope.Scope> =>
  Effect.suspend(() => {
    const decoded = decodeConfig(plugin, block)
    if (Result.isFailure(decoded)) {
      const problems = decoded.failure.map(
        (issue) =>
          new ConfigProblem({
            file: context.file,
            line: 1,
            column: 1,
            severity: "error",
            message: `channels.${[context.name, ...issue.path.map(String)].join(".")}: ${issue.message}`,
          }),
      )
      return Effect.fail(new ConfigError({ file: context.file, problems }))
    }
    return plugin.make(decoded.success, context)
  })
