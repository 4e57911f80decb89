import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { describe, expect, it } from "vitest"
import { peel, root, simulatorEnv } from "./cli.ts"

/** Every README and CONTRIBUTING file in the repository (root, packages, examples). */
const documents = (): ReadonlyArray<string> => {
  const found = ["README.md", "CONTRIBUTING.md"].map((name) => join(root, name)).filter(existsSync)
  for (const folder of ["packages", "examples"]) {
    const base = join(root, folder)
    if (!existsSync(base)) continue
    for (const entry of readdirSync(base)) {
      const readme = join(base, entry, "README.md")
      if (existsSync(readme)) found.push(readme)
    }
  }
  return found
}

const yamlBlocks = (markdown: string): ReadonlyArray<string> =>
  [...markdown.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1]!)

describe("YAML examples in the docs", () => {
  const files = documents()

  it("finds the docs", () => {
    expect(files.map((file) => relative(root, file))).toContain("README.md")
  })

  for (const file of files) {
    const blocks = yamlBlocks(readFileSync(file, "utf8"))
    blocks.forEach((block, index) => {
      it(`${relative(root, file)} block ${index + 1} is a valid pipeline`, async () => {
        // Written beside the document so relative plugin paths resolve as a reader would expect.
        const path = join(dirname(file), `.readme-block-${index + 1}.yaml`)
        writeFileSync(path, block)
        try {
          const variables = Object.fromEntries(
            [...block.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => [
              match[1]!,
              `doc-value-for-${match[1]!}`,
            ]),
          )
          const { code, stderr } = await peel(["validate", path], {
            ...variables,
            ...simulatorEnv("http://127.0.0.1:1"),
          })
          expect(stderr).toBe("")
          expect(code).toBe(0)
        } finally {
          rmSync(path, { force: true })
        }
      })
    })
  }
})
