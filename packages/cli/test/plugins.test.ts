/** The `peel` command ships every first-party channel: each `packages/channel-*` is one of its plugin imports. */
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { pluginImports } from "../src/plugins.ts"

const packages = join(import.meta.dirname, "..", "..")

describe("the CLI's first-party plugins", () => {
  it("lists every packages/channel-* under its short and its package name, and each imports a plugin of that name", async () => {
    const channels = readdirSync(packages)
      .filter((name) => name.startsWith("channel-"))
      .map((name) => name.slice("channel-".length))
    expect(channels.length).toBeGreaterThan(0)
    expect(Object.keys(pluginImports).sort()).toEqual(
      channels.flatMap((name) => [name, `@peel/channel-${name}`]).sort(),
    )
    for (const name of channels) {
      const module = (await pluginImports[name]!()) as { default?: { name?: string } }
      expect(module.default?.name).toBe(name)
    }
  })
})
