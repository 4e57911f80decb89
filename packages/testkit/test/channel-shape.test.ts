/**
 * Every `packages/channel-*` keeps the same shape (STYLE "What to absorb" 2): a package.json exporting
 * `./src/index.ts` with `internal/*` blocked and `effect` as a peer, a default-exported plugin named for the
 * folder, a Client module, a Channel module, `internal/errors.ts`, tests including the conformance suite, and
 * a README with a YAML block and a TypeScript block.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Plugin } from "@peel/core"
import { describe, expect, it } from "vitest"

const packagesDirectory = join(import.meta.dirname, "..", "..")
const channelDirectories = readdirSync(packagesDirectory)
  .filter((entry) => entry.startsWith("channel-") && statSync(join(packagesDirectory, entry)).isDirectory())
  .sort()

const filesIn = (directory: string): ReadonlyArray<string> => (existsSync(directory) ? readdirSync(directory) : [])

describe("channel package shape", () => {
  it("finds channel packages", () => {
    expect(channelDirectories.length).toBeGreaterThan(0)
  })

  for (const directory of channelDirectories) {
    const root = join(packagesDirectory, directory)
    const suffix = directory.slice("channel-".length)

    describe(directory, () => {
      it(`package.json is @peel/${directory}, exports ./src/index.ts, blocks internal/*, peers effect`, () => {
        const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
          name?: string
          exports?: Record<string, unknown>
          peerDependencies?: Record<string, string>
        }
        expect(manifest.name).toBe(`@peel/channel-${suffix}`)
        expect(manifest.exports?.["."]).toBe("./src/index.ts")
        expect(manifest.exports).toHaveProperty(["./internal/*"], null)
        expect(manifest.peerDependencies).toHaveProperty("effect")
      })

      it(`src/index.ts default-exports a channel plugin named "${suffix}"`, async () => {
        const module = (await import(pathToFileURL(join(root, "src", "index.ts")).href)) as { default?: unknown }
        expect(Plugin.checkPlugin(module.default)).toBeUndefined()
        expect((module.default as { name?: unknown }).name).toBe(suffix)
      })

      it("has a *Client.ts, a *Channel.ts and internal/errors.ts", () => {
        const sources = filesIn(join(root, "src"))
        expect(
          sources.filter((file) => file.endsWith("Client.ts")),
          "src/*Client.ts",
        ).not.toHaveLength(0)
        expect(
          sources.filter((file) => file.endsWith("Channel.ts")),
          "src/*Channel.ts",
        ).not.toHaveLength(0)
        expect(existsSync(join(root, "src", "internal", "errors.ts")), "src/internal/errors.ts").toBe(true)
      })

      it("has tests, including conformance.test.ts", () => {
        const tests = filesIn(join(root, "test")).filter((file) => file.endsWith(".test.ts"))
        expect(tests.length).toBeGreaterThan(0)
        expect(tests).toContain("conformance.test.ts")
      })

      it("has a README with a ```yaml block and a ```ts block", () => {
        const readme = join(root, "README.md")
        expect(existsSync(readme), "README.md").toBe(true)
        const text = existsSync(readme) ? readFileSync(readme, "utf8") : ""
        expect(text, "a ```yaml block").toMatch(/^```ya?ml\s*$/m)
        expect(text, "a ```ts block").toMatch(/^```(ts|typescript)\s*$/m)
      })
    })
  }
})
