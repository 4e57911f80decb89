/**
 * Finding and importing a channel plugin: `plugin: NAME` is `@peel/channel-NAME`, then a package called
 * NAME; a scoped or slashed name is a package as written; `./path` is a file beside the pipeline.
 */
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, isAbsolute, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import type { AnyChannelPlugin } from "@peel/contract/Channel"
import { checkPlugin } from "@peel/contract/Plugin"
import { Effect } from "effect"

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

export const importPlugin = (
  specifier: string,
  file: string,
  options: {
    readonly plugins?: Readonly<Record<string, AnyChannelPlugin>> | undefined
    readonly resolveFrom?: ReadonlyArray<string> | undefined
  },
): Effect.Effect<AnyChannelPlugin, string> => {
  const known = options.plugins?.[specifier]
  if (known !== undefined) return Effect.succeed(known)
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
      const problem = checkPlugin(module.default)
      if (problem !== undefined) throw new Error(`${packageName} is not a Peel channel plugin: ${problem}`)
      return module.default as AnyChannelPlugin
    },
    catch: (error) => `cannot load plugin "${specifier}": ${error instanceof Error ? error.message : String(error)}`,
  })
}
