import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { Output } from "../src/index.ts"

const scratch = () => mkdtempSync(join(tmpdir(), "peel-output-"))
const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3])

const open = (dir: string) => Effect.runPromise(Output.open(dir))
const failureOf = async <A>(effect: Effect.Effect<A, unknown>) => {
  const exit = await Effect.runPromiseExit(effect)
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  if (failure === undefined || failure._tag !== "Fail") throw new Error(`expected a typed failure: ${exit.cause}`)
  return failure.error as { _tag: string; message: string; path: string; rescuedTo?: string }
}

const isRoot = process.getuid?.() === 0

describe("Output.open", () => {
  it("creates a missing folder (and its parents) and leaves no probe behind", async () => {
    const dir = join(scratch(), "a", "b")
    const output = await open(dir)
    expect(output.dir).toBe(dir)
    expect(readdirSync(dir)).toEqual([])
  })

  it("fails naming the path when it is a file", async () => {
    const file = join(scratch(), "file")
    writeFileSync(file, "x")
    const error = await failureOf(Output.open(file))
    expect(error._tag).toBe("OutputError")
    expect(error.path).toBe(file)
    expect(error.message).toBe(`cannot use ${file} as the output folder: it is a file, not a folder`)
  })

  it("fails when a parent is a file", async () => {
    const file = join(scratch(), "file")
    writeFileSync(file, "x")
    const error = await failureOf(Output.open(join(file, "images")))
    expect(error.message).toContain("not a folder")
  })

  // Node's recursive mkdir never returns for /proc/xyz: answering at all (within the test's generous
  // bound, not a stopwatch) is the check.
  it("fails, rather than hanging, for a path under /proc (Node's recursive mkdir never returns there)", async () => {
    const error = await failureOf(Output.open("/proc/xyz"))
    expect(error.message).toBe("cannot use /proc/xyz as the output folder: it cannot be created there")
  }, 30_000)

  it("fails for a folder it cannot write", async () => {
    // Root ignores permission bits, so root gets a folder nobody may write instead.
    const dir = isRoot ? "/proc" : join(scratch(), "read-only")
    if (!isRoot) {
      mkdirSync(dir)
      chmodSync(dir, 0o555)
    }
    const error = await failureOf(Output.open(dir))
    expect(error.path).toBe(dir)
    expect(error.message).toMatch(new RegExp(`^cannot use ${dir} as the output folder: `))
  })

  it("removes temporary files a crashed run left, but not a live write's", async () => {
    const dir = scratch()
    const stale = join(dir, ".cover.png.123-1.peel-tmp")
    const live = join(dir, ".other.png.456-1.peel-tmp")
    writeFileSync(stale, "half an image")
    writeFileSync(live, "being written")
    const anHourAgo = new Date(Date.now() - 3_600_000)
    utimesSync(stale, anHourAgo, anHourAgo)
    await open(dir)
    expect(existsSync(stale)).toBe(false)
    expect(existsSync(live)).toBe(true)
  })
})

describe("OutputDirectory", () => {
  it("writes atomically, records the request, and looks up by request hash", async () => {
    const dir = scratch()
    const output = await open(dir)
    expect(output.lookup("cover", "hash-a")).toEqual({ _tag: "Missing" })
    const file = await Effect.runPromise(output.write("cover", "hash-a", png, "image/png"))
    expect(file).toBe(join(dir, "cover.png"))
    expect(new Uint8Array(readFileSync(file))).toEqual(png)
    expect(JSON.parse(readFileSync(`${file}.json`, "utf8"))).toEqual({
      id: "cover",
      requestHash: "hash-a",
      identity: "peel-identity/1",
      mimeType: "image/png",
      bytes: png.length,
    })
    expect(readdirSync(dir).sort()).toEqual(["cover.png", "cover.png.json"])
    expect(output.lookup("cover", "hash-a")).toEqual({ _tag: "Current", file })
    expect(output.lookup("cover", "hash-b")).toEqual({ _tag: "Changed", file })

    // A new run indexes what the last one wrote.
    const again = await open(dir)
    expect(again.lookup("cover", "hash-a")).toEqual({ _tag: "Current", file })
    expect(again.lookup("cover", "hash-b")).toEqual({ _tag: "Changed", file })
    expect(again.lookup("other", "hash-a")).toEqual({ _tag: "Missing" })

    // Regenerating a changed request replaces the image and its record.
    await Effect.runPromise(again.write("cover", "hash-b", png, "image/png"))
    expect(again.lookup("cover", "hash-b")).toEqual({ _tag: "Current", file })
    expect((await open(dir)).lookup("cover", "hash-b")).toEqual({ _tag: "Current", file })
  })

  it("records a placeholder as one, so a re-run tries again for the real image", async () => {
    const dir = scratch()
    const output = await open(dir)
    const file = await Effect.runPromise(output.write("cover", "hash-a", png, "image/png", { placeholder: true }))
    expect(JSON.parse(readFileSync(`${file}.json`, "utf8")).placeholder).toBe(true)
    expect(output.lookup("cover", "hash-a")).toEqual({ _tag: "Changed", file, placeholder: true })
    const again = await open(dir)
    expect(again.lookup("cover", "hash-a")).toEqual({ _tag: "Changed", file, placeholder: true })
    expect(again.lookup("cover", "hash-b")).toEqual({ _tag: "Changed", file })
    await Effect.runPromise(again.write("cover", "hash-a", png, "image/png"))
    expect(again.lookup("cover", "hash-a")).toEqual({ _tag: "Current", file })
    expect(JSON.parse(readFileSync(`${file}.json`, "utf8")).placeholder).toBeUndefined()
  })

  it("counts an image without a record (made before records existed) as current: never pay twice", async () => {
    const dir = scratch()
    writeFileSync(join(dir, "legacy.jpg"), "jpeg bytes")
    const output = await open(dir)
    expect(output.lookup("legacy", "any-hash")).toEqual({ _tag: "Current", file: join(dir, "legacy.jpg") })
  })

  it("keeps the bytes in a rescue folder when the image cannot be written (folder removed)", async () => {
    const dir = scratch()
    const output = await open(dir)
    rmSync(dir, { recursive: true })
    const error = await failureOf(output.write("lost", "0123456789abcdef", png, "image/png"))
    expect(error._tag).toBe("OutputError")
    expect(error).toBeInstanceOf(Output.OutputRescued)
    expect(error.path).toBe(join(dir, "lost.png"))
    expect(error.rescuedTo).toBe(join(tmpdir(), "peel-rescue", "lost.0123456789ab.png"))
    expect(Output.rescuedTo(error)).toBe(error.rescuedTo)
    expect(error.message).toContain("the folder does not exist")
    expect(error.message).toContain(`kept at ${error.rescuedTo}`)
    expect(new Uint8Array(readFileSync(error.rescuedTo!))).toEqual(png)
    expect(JSON.parse(readFileSync(`${error.rescuedTo}.json`, "utf8")).requestHash).toBe("0123456789abcdef")
    rmSync(error.rescuedTo!)
    rmSync(`${error.rescuedTo}.json`)
  })
})

describe("Output.writeAtomically", () => {
  it("leaves only the final file", async () => {
    const dir = scratch()
    await Effect.runPromise(Output.writeAtomically(join(dir, "a.png"), png))
    expect(readdirSync(dir)).toEqual(["a.png"])
  })

  it("fails with an OutputError naming the path and leaves no temporary file", async () => {
    const dir = scratch()
    mkdirSync(join(dir, "a.png"))
    const error = await failureOf(Output.writeAtomically(join(dir, "a.png"), png))
    expect(error).toMatchObject({ _tag: "OutputError", path: join(dir, "a.png") })
    expect(error.message).toMatch(new RegExp(`^cannot write ${join(dir, "a.png")}: `))
    expect(readdirSync(dir)).toEqual(["a.png"])
  })
})

describe("Output.requestHash", () => {
  it("is the same for the same request (prompt whitespace aside) and differs when anything asked for differs", () => {
    const base = Output.requestHash({ prompt: "a red  fox ", size: "2K" })
    expect(base).toMatch(/^[0-9a-f]{64}$/)
    expect(Output.requestHash({ prompt: "a red fox", size: "2K" })).toBe(base)
    expect(Output.requestHash({ prompt: "a red fox", size: "2K", id: "other", urgency: "batch" })).toBe(base)
    for (const changed of [
      { prompt: "a red fox", size: "4K" as const },
      { prompt: "a red fox" },
      { prompt: "a red fox", size: "2K" as const, model: "gemini-2.5-flash-image" },
      { prompt: "a red fox", size: "2K" as const, aspectRatio: "16:9" as const },
      { prompt: "a red fox", size: "2K" as const, use: "hero" },
      { prompt: "a red fox", size: "2K" as const, priority: "low" as const },
      { prompt: "a blue fox", size: "2K" as const },
    ])
      expect(Output.requestHash(changed)).not.toBe(base)
  })
})
