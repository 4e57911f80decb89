import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Simulator } from "@peel/simulator"
import { imageSize } from "image-size"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const root = join(import.meta.dirname, "..", "..", "..")
let simulator: Awaited<ReturnType<typeof Simulator.start>>
beforeAll(async () => {
  simulator = await Simulator.start({ port: 0 })
})
afterAll(() => simulator.stop())

/** Run an example exactly as the README says, from the repository root, in a scratch output folder. */
const runExample = (file: string) => {
  const scratch = mkdtempSync(join(tmpdir(), "peel-example-"))
  const source = join(import.meta.dirname, "..", file)
  const result = spawnSync(process.execPath, [source], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", GEMINI_BASE_URL: simulator.url, GEMINI_API_KEY: "example-key-SECRET" },
    encoding: "utf8",
  })
  return { ...result, scratch }
}

describe("embedding examples (the README's code, executed)", () => {
  for (const [file, size] of [
    ["promise.ts", [2752, 1536]],
    ["effect.ts", [6336, 2688]],
  ] as const) {
    it(`${file} makes an image and prints where it went`, () => {
      const { status, stdout, stderr } = runExample(file)
      expect(stderr).toBe("")
      expect(status).toBe(0)
      const match = /^(\S+): (\d+)x(\d+) gemini-3-pro-image via google, \$([0-9.]+)\n$/.exec(stdout)
      expect(match).not.toBeNull()
      const written = imageSize(readFileSync(join(root, match![1]!)))
      expect([written.width, written.height]).toEqual(size)
      expect(stdout).not.toContain("example-key-SECRET")
    })
  }

  it("the README shows these files verbatim", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8")
    for (const file of ["promise.ts", "effect.ts"]) {
      const source = readFileSync(join(import.meta.dirname, "..", file), "utf8").trim()
      expect(readme).toContain(source)
    }
  })
})
