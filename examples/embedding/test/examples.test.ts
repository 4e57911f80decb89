import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
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

/**
 * Run an example exactly as the README says, from the repository root. Asynchronously: the simulator
 * answers from this same process, so a synchronous spawn would deadlock.
 */
const runExample = (file: string): Promise<{ status: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, "..", file)], {
      cwd: root,
      env: { PATH: process.env.PATH ?? "", GEMINI_BASE_URL: simulator.url, GEMINI_API_KEY: "example-key-SECRET" },
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })

describe("embedding examples (the README's code, executed)", () => {
  for (const [file, size] of [
    ["promise.ts", [2752, 1536]],
    ["effect.ts", [6336, 2688]],
  ] as const) {
    it(`${file} makes an image and prints where it went`, async () => {
      const { status, stdout, stderr } = await runExample(file)
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
