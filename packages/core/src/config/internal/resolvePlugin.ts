/**
 * Finding and importing a channel plugin: `plugin: NAME` is a plugin the program knows (`plugins`, then
 * `pluginImports`), then `@peel/channel-NAME`, then a package called NAME; a scoped or slashed name is a
 * package as written; `./path` is a file beside the pipeline.
 *
 * A plugin imported from a file may run with another copy of `effect` than this code (the `peel` command is
 * one bundle with its own, tree-shaken copy; a plugin beside the pipeline imports the one in its
 * `node_modules`). Effects and tagged errors cross between copies, but a Schema does not: one copy's parser
 * cannot run another copy's transformations, and a `Redacted` made by one copy cannot be read by the other
 * (each keeps its secrets in its own registry). So a plugin's configuration is decoded by the `effect` the
 * plugin itself resolves, through its Standard Schema interface.
 */
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, isAbsolute, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import type { AnyChannelPlugin } from "@peel/contract/Channel"
import type { PathIssue } from "@peel/contract/Issues"
import { checkPlugin, decodeConfig, strict } from "@peel/contract/Plugin"
import { Effect, Result, Schema } from "effect"

const firstPartyPrefix = "@peel/channel-"

const isPath = (specifier: string): boolean =>
  specifier.startsWith("./") || specifier.startsWith("../") || isAbsolute(specifier)

/** The first candidate package that resolves from any of the base locations. */
const firstResolved = (candidates: ReadonlyArray<string>, bases: ReadonlyArray<string>): string | undefined => {
  for (const candidate of candidates)
    for (const base of bases) {
      try {
        return createRequire(base).resolve(candidate)
      } catch {
        // not resolvable from this base; try the next
      }
    }
  return undefined
}

/** A plugin and how to decode a channel block with its Schema (strict: every issue, unknown keys are errors). */
export interface ImportedPlugin {
  readonly plugin: AnyChannelPlugin
  readonly decode: (block: unknown) => Result.Result<unknown, ReadonlyArray<PathIssue>>
}

const ownDecoder = (plugin: AnyChannelPlugin): ImportedPlugin => ({
  plugin,
  decode: (block) => decodeConfig(plugin, block),
})

type StandardResult =
  | { readonly value: unknown; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<unknown> }> }

/**
 * The decoder of a plugin loaded from `location`: this code's own Schema when `effect/Schema` resolves from
 * there to the very module this code runs with, otherwise the copy the plugin resolves (see the module note).
 */
const decoderAt = async (plugin: AnyChannelPlugin, location: string): Promise<ImportedPlugin> => {
  let path: string
  try {
    path = createRequire(location).resolve("effect/Schema")
  } catch {
    return ownDecoder(plugin) // no effect beside the plugin: it was built with whatever loaded it
  }
  const theirs = (await import(pathToFileURL(path).href)) as typeof Schema
  if (theirs === Schema || typeof theirs.toStandardSchemaV1 !== "function") return ownDecoder(plugin)
  const standard = theirs.toStandardSchemaV1(plugin.config as Schema.Decoder<unknown>, { parseOptions: strict })
  return {
    plugin,
    decode: (block) => {
      const result = standard["~standard"].validate(block) as StandardResult | Promise<StandardResult>
      if (result instanceof Promise)
        return Result.fail([{ path: [], message: "the plugin's config Schema does not decode synchronously" }])
      if (result.issues === undefined) return Result.succeed(result.value)
      return Result.fail(
        result.issues.map((issue) => ({
          path: (issue.path ?? []).map((segment) =>
            typeof segment === "object" && segment !== null ? (segment as { key: PropertyKey }).key : segment,
          ) as ReadonlyArray<PropertyKey>,
          message: issue.message,
        })),
      )
    },
  }
}

const checked = (module: { readonly default?: unknown }, packageName: string): AnyChannelPlugin => {
  const problem = checkPlugin(module.default)
  if (problem !== undefined) throw new Error(`${packageName} is not a Peel channel plugin: ${problem}`)
  return module.default as AnyChannelPlugin
}

const failure = (specifier: string) => (error: unknown) =>
  `cannot load plugin "${specifier}": ${error instanceof Error ? error.message : String(error)}`

export const importPlugin = (
  specifier: string,
  file: string,
  options: {
    readonly plugins?: Readonly<Record<string, AnyChannelPlugin>> | undefined
    readonly pluginImports?: Readonly<Record<string, () => Promise<{ readonly default?: unknown }>>> | undefined
    readonly resolveFrom?: ReadonlyArray<string> | undefined
  },
): Effect.Effect<ImportedPlugin, string> => {
  const known = options.plugins?.[specifier]
  if (known !== undefined) return Effect.succeed(ownDecoder(known))
  const bundled = options.pluginImports?.[specifier]
  if (bundled !== undefined)
    return Effect.tryPromise({
      try: async () => ownDecoder(checked(await bundled(), specifier)),
      catch: failure(specifier),
    })
  // `plugin: NAME` is `@peel/channel-NAME` first, then a package called NAME; anything with a scope or
  // a slash is a package name as written.
  const candidates =
    isPath(specifier) || specifier.includes("/") || specifier.startsWith("@")
      ? [specifier]
      : [`${firstPartyPrefix}${specifier}`, specifier]
  const packageName = candidates[0]!
  return Effect.tryPromise({
    try: async () => {
      let location: string | undefined
      if (isPath(specifier)) {
        location = resolve(dirname(file), specifier)
        if (!existsSync(location)) throw new Error(`no file ${location}`)
      } else {
        const bases = [
          resolve(dirname(file), "noop.js"),
          resolve(process.cwd(), "noop.js"),
          ...(options.resolveFrom ?? []),
        ]
        location = firstResolved(candidates, bases)
        if (location === undefined) throw new Error(`cannot find package ${candidates.join(" or ")}`)
      }
      const module = (await import(pathToFileURL(location).href)) as { default?: unknown }
      return await decoderAt(checked(module, packageName), location)
    },
    catch: failure(specifier),
  })
}
