/**
 * The one atomic write (internal/Files.ts), through Effect's FileSystem: what a failure half-way leaves
 * (the old file whole, no temporary file), in words a user can act on. A FileSystem that runs out of
 * space after writing part of the temporary file stands in for a full disk; everything else is Node's.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, FileSystem, Layer, PlatformError } from "effect"
import { describe, expect, it } from "vitest"
import { Cache, Output, Pipeline, Runner, Workload } from "../src/index.ts"
import * as Files from "../src/internal/Files.ts"

const scratch = () => mkdtempSync(join(tmpdir(), "peel-files-"))

/** Node's FileSystem, except that a write stops after 8 bytes with ENOSPC. */
const diskFullAfter8Bytes = Layer.effect(FileSystem.FileSystem)(
  Effect.gen(function* () {
    const node = yield* FileSystem.FileSystem
    return {
      ...node,
      writeFile: (path: string, data: Uint8Array) =>
        node.writeFile(path, data.subarray(0, 8)).pipe(
          Effect.andThen(
            Effect.fail(
              PlatformError.systemError({
                _tag: "Unknown",
                module: "FileSystem",
                method: "writeFile",
                pathOrDescriptor: path,
                cause: Object.assign(new Error("no space left on device"), { code: "ENOSPC" }),
              }),
            ),
          ),
        ),
    } satisfies FileSystem.FileSystem
  }),
).pipe(Layer.provide(Files.layerNode))

describe("Files.writeAtomically", () => {
  it("a write that fails half-way leaves the old file whole and no temporary file, and says the disk is full", async () => {
    const directory = scratch()
    const path = join(directory, "cover.png")
    writeFileSync(path, "the old image, whole")
    const exit = await Effect.runPromiseExit(
      Files.writeAtomically(path, new Uint8Array(64).fill(9)).pipe(Effect.provide(diskFullAfter8Bytes)),
    )
    if (Exit.isSuccess(exit)) throw new Error("expected the write to fail")
    const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")
    expect(Files.reasonOf((error as { error: unknown }).error)).toBe("the disk is full")
    expect(readFileSync(path, "utf8")).toBe("the old image, whole")
    expect(readdirSync(directory)).toEqual(["cover.png"])
  })

  it("writes text and bytes, naming its temporary file .NAME.PID-N.peel-tmp", async () => {
    const directory = scratch()
    await Effect.runPromise(
      Files.writeAtomically(join(directory, "a.txt"), "text").pipe(Effect.provide(Files.layerNode)),
    )
    expect(readFileSync(join(directory, "a.txt"), "utf8")).toBe("text")
    expect(Files.temporaryPath(join(directory, "a.txt"))).toMatch(
      new RegExp(`/\\.a\\.txt\\.${process.pid}-\\d+\\.peel-tmp$`),
    )
    expect(Files.temporaryName.test(".a.txt.1-2.peel-tmp")).toBe(true)
  })

  it("Output.writeAtomically: a rename onto a folder fails in words, and removes its temporary file", async () => {
    const directory = scratch()
    const path = join(directory, "cover.png")
    mkdirSync(path)
    writeFileSync(join(path, "inside"), "x")
    const exit = await Effect.runPromiseExit(Output.writeAtomically(path, new Uint8Array([1, 2, 3])))
    expect(Exit.isFailure(exit) ? String(exit.cause) : "written").toContain(
      `cannot write ${path}: a folder is in the way`,
    )
    expect(readdirSync(directory)).toEqual(["cover.png"])
  })

  it("the file cache writes its entries with the same write: no temporary file is left", async () => {
    const directory = scratch()
    const store = Cache.fileKeyValueStore({ directory, maxBytes: 1_000_000 })
    const key = "ab".repeat(32)
    await Effect.runPromise(store.set(key, new Uint8Array([1, 2, 3])))
    expect(readdirSync(join(directory, "ab"))).toEqual([`${key}.entry`])
    expect(existsSync(join(directory, "ab", `${key}.entry`))).toBe(true)
  })
})

describe("a fallback placeholder file, read through the FileSystem", () => {
  const runnerWith = (placeholder: string) => {
    const file = join(import.meta.dirname, "fixtures", `placeholder-${Math.random().toString(36).slice(2)}.yaml`)
    writeFileSync(
      file,
      [
        "version: 1",
        "name: placeholder",
        "channels:",
        "  main: { plugin: ./fixture-plugin.ts, price: 0.134 }",
        "stages:",
        `  - fallback: [{ placeholder: "${placeholder}" }]`,
        "  - select: { strategy: ordered, channels: [main] }",
        "  - generate: {}",
      ].join("\n"),
    )
    return Effect.runPromiseExit(
      Effect.scoped(
        Effect.gen(function* () {
          const pipeline = yield* Pipeline.load(file, { env: {}, today: "2026-11-25" })
          return yield* Runner.make(pipeline)
        }),
      ),
    ).finally(() => rmSync(file, { force: true }))
  }

  it("names a missing file when the runner is built, before any request", async () => {
    const exit = await runnerWith("./no-such-placeholder.png")
    expect(Exit.isFailure(exit) ? String(exit.cause) : "built").toContain(
      `fallback placeholder ${join(import.meta.dirname, "fixtures", "no-such-placeholder.png")} cannot be read: no such file or folder`,
    )
  })

  it("takes a real image file", async () => {
    const directory = scratch()
    writeFileSync(
      join(directory, "grey.png"),
      Buffer.from(
        "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC",
        "base64",
      ),
    )
    const exit = await runnerWith(join(directory, "grey.png"))
    expect(Exit.isSuccess(exit) ? "built" : String(exit.cause)).toBe("built")
  })
})

describe("Files.readText: pipeline and workload files read through the FileSystem", () => {
  const firstProblem = (exit: Exit.Exit<unknown, unknown>): string => {
    if (Exit.isSuccess(exit)) throw new Error("expected the load to fail")
    const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail") as
      | { error: { problems: ReadonlyArray<{ line: number; column: number; message: string }> } }
      | undefined
    const problem = failure?.error.problems[0]
    return problem === undefined ? String(exit.cause) : `${problem.line}:${problem.column}: ${problem.message}`
  }

  it("a missing file and a folder are one line each, for a pipeline and for a workload", async () => {
    const directory = scratch()
    expect(firstProblem(await Effect.runPromiseExit(Pipeline.load(join(directory, "nope.yaml"))))).toBe(
      "1:1: file not found",
    )
    expect(firstProblem(await Effect.runPromiseExit(Pipeline.load(directory)))).toBe(
      "1:1: is a directory, not a pipeline file",
    )
    expect(firstProblem(await Effect.runPromiseExit(Workload.load(join(directory, "nope.yaml"))))).toBe(
      "1:1: file not found",
    )
    expect(firstProblem(await Effect.runPromiseExit(Workload.load(directory)))).toBe(
      "1:1: is a directory, not a workload file",
    )
  })

  it("a file that cannot be read says why", async () => {
    const exit = await Effect.runPromiseExit(
      Files.readText(join(scratch(), "a", "b.yaml"), "pipeline").pipe(Effect.provide(Files.layerNode)),
    )
    expect(Exit.isFailure(exit) ? String(exit.cause) : "read").toContain("file not found")
    const file = join(scratch(), "not-a-folder")
    writeFileSync(file, "x")
    const through = await Effect.runPromiseExit(
      Files.readText(join(file, "b.yaml"), "pipeline").pipe(Effect.provide(Files.layerNode)),
    )
    expect(Exit.isFailure(through) ? String(through.cause) : "read").toContain(
      "cannot read it: part of the path is a file, not a folder",
    )
  })
})
