/**
 * The layout rules the test command enforces (issue 17): core's folders depend in one direction only, no
 * module imports itself back through any chain (static or dynamic imports), and a channel plugin's
 * dependency closure holds no YAML loader, no SQLite and no runner.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { describe, expect, it } from "vitest"

const packages = resolve(import.meta.dirname, "../..")
const coreSrc = join(packages, "core/src")

/** Core's folders, lowest first: a file may import from its own folder or from a strictly lower rank. */
const ranks: Readonly<Record<string, number>> = {
  internal: 0,
  state: 1,
  output: 2,
  cache: 2,
  spend: 2,
  plan: 3,
  engine: 4,
  policies: 5,
  stages: 6,
  config: 7,
  runner: 8,
  work: 9,
  estimate: 9,
  bulk: 10,
  facade: 11,
  ".": 12,
}

const walk = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? walk(join(dir, entry.name))
      : entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")
        ? [join(dir, entry.name)]
        : [],
  )

const specifiers = (file: string): Array<string> => {
  const text = readFileSync(file, "utf8")
  const found: Array<string> = []
  for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["']([^"']+)["']/g)) found.push(match[1]!)
  return found
}

/** Relative imports resolved to files. */
const localImports = (file: string): Array<string> =>
  specifiers(file)
    .filter((spec) => spec.startsWith("."))
    .map((spec) => resolve(dirname(file), spec))

const folderOf = (file: string): string => {
  const path = relative(coreSrc, file)
  const parts = path.split("/")
  return parts.length === 1 ? "." : parts[0]!
}

const findCycle = (files: ReadonlyArray<string>): Array<string> | undefined => {
  const state = new Map<string, "active" | "done">()
  const stack: Array<string> = []
  const visit = (file: string): Array<string> | undefined => {
    if (state.get(file) === "done") return undefined
    if (state.get(file) === "active") return [...stack.slice(stack.indexOf(file)), file]
    state.set(file, "active")
    stack.push(file)
    for (const next of localImports(file)) {
      if (!existsSync(next)) continue
      const cycle = visit(next)
      if (cycle !== undefined) return cycle
    }
    stack.pop()
    state.set(file, "done")
    return undefined
  }
  for (const file of files) {
    const cycle = visit(file)
    if (cycle !== undefined) return cycle
  }
  return undefined
}

describe("layout", () => {
  const coreFiles = walk(coreSrc)

  it("every core folder has a rank", () => {
    const unknown = [...new Set(coreFiles.map(folderOf))].filter((folder) => ranks[folder] === undefined)
    expect(unknown).toEqual([])
  })

  it("core's folders depend in one direction", () => {
    const wrong: Array<string> = []
    for (const file of coreFiles) {
      const from = folderOf(file)
      for (const target of localImports(file)) {
        const to = folderOf(target)
        if (to === from) continue
        if (!((ranks[to] ?? 99) < (ranks[from] ?? -1)))
          wrong.push(`${relative(coreSrc, file)} → ${relative(coreSrc, target)} (${from} may not import ${to})`)
      }
    }
    expect(wrong).toEqual([])
  })

  it("no package has an import cycle", () => {
    for (const name of readdirSync(packages)) {
      const src = join(packages, name, "src")
      if (!existsSync(src)) continue
      const cycle = findCycle(walk(src))
      expect(
        cycle?.map((file) => relative(packages, file)),
        `cycle in ${name}`,
      ).toBeUndefined()
    }
  })

  it("a channel plugin's dependency closure holds no YAML loader, no SQLite, no runner", () => {
    const manifest = (dir: string) =>
      JSON.parse(readFileSync(join(packages, dir, "package.json"), "utf8")) as {
        name: string
        dependencies?: Record<string, string>
      }
    const byName = new Map(
      readdirSync(packages)
        .filter((dir) => existsSync(join(packages, dir, "package.json")))
        .map((dir) => [manifest(dir).name, dir] as const),
    )
    const channels = [...byName.keys()].filter((name) => name.startsWith("@peel/channel-"))
    expect(channels.length).toBeGreaterThanOrEqual(5)
    for (const channel of channels) {
      const closure = new Set<string>()
      const queue = [channel]
      while (queue.length > 0) {
        const name = queue.pop()!
        if (closure.has(name)) continue
        closure.add(name)
        const dir = byName.get(name)
        if (dir !== undefined) queue.push(...Object.keys(manifest(dir).dependencies ?? {}))
      }
      expect([...closure].filter((name) => ["yaml", "@peel/core", "@peel/cli"].includes(name))).toEqual([])
      for (const name of closure) {
        const dir = byName.get(name)
        if (dir === undefined) continue
        const offending = walk(join(packages, dir, "src")).filter((file) =>
          specifiers(file).some((spec) => spec === "node:sqlite" || spec === "yaml" || spec.startsWith("@peel/core")),
        )
        expect(
          offending.map((file) => relative(packages, file)),
          `${channel} pulls in ${name}`,
        ).toEqual([])
      }
    }
  })
})
