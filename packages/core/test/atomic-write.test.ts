/**
 * Images are written atomically: to a temporary file beside the target, then renamed over it. These tests
 * see the difference from writing straight to the final path: the final path never shows a partial image
 * (not while a large write is under way, not after a write fails), and an existing file is replaced by a
 * new inode rather than truncated in place, so a reader holding the old file still sees it whole.
 *
 * Run against `Runner.writeAtomically` (what the runner writes images with) and `Output.writeAtomically`;
 * if image writing moves again, this test must follow the function.
 */
import {
  existsSync,
  linkSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { Output, Runner } from "../src/index.ts"

const scratch = () => mkdtempSync(join(tmpdir(), "peel-atomic-"))

const writers = [
  ["Runner.writeAtomically", Runner.writeAtomically],
  ["Output.writeAtomically", Output.writeAtomically],
] as const

describe.each(writers)("%s", (_name, writeAtomically) => {
  it("the final path never holds a partial file while a large write is under way", async () => {
    const directory = scratch()
    const path = join(directory, "large.png")
    const size = 48 * 1024 * 1024
    const bytes = new Uint8Array(size).fill(7)
    const seen: Array<number> = []
    let writing = true
    const poll = () => {
      if (existsSync(path)) seen.push(statSync(path).size)
      if (writing) setImmediate(poll)
    }
    setImmediate(poll)
    await Effect.runPromise(writeAtomically(path, bytes))
    writing = false
    expect(statSync(path).size).toBe(size)
    const partial = seen.filter((observed) => observed !== size)
    expect(partial, `the final path was seen with ${partial.length} partial sizes`).toEqual([])
  })

  it("when the write fails, the final path never appears", async () => {
    const directory = scratch()
    const path = join(directory, "failed.png")
    // Bytes that fail half-way through being written: the first chunk goes out, the second throws.
    const failing = {
      *[Symbol.iterator]() {
        yield new Uint8Array(1024).fill(1)
        throw new Error("the disk is full")
      },
    }
    const exit = await Effect.runPromiseExit(writeAtomically(path, failing as unknown as Uint8Array))
    expect(Exit.isFailure(exit)).toBe(true)
    expect(JSON.stringify(exit)).toContain("OutputError")
    expect(existsSync(path)).toBe(false)
  })

  it("a failed write leaves no temporary file behind", async () => {
    const directory = scratch()
    const failing = {
      *[Symbol.iterator]() {
        yield new Uint8Array(1024).fill(1)
        throw new Error("the disk is full")
      },
    }
    const exit = await Effect.runPromiseExit(
      writeAtomically(join(directory, "failed.png"), failing as unknown as Uint8Array),
    )
    expect(Exit.isFailure(exit)).toBe(true)
    expect(readdirSync(directory)).toEqual([])
  })

  it("an existing file is replaced (a new inode), not truncated and rewritten in place", async () => {
    const directory = scratch()
    const path = join(directory, "cover.png")
    const before = Buffer.from("the old image, whole")
    writeFileSync(path, before)
    const held = join(directory, "held-by-a-reader.png")
    linkSync(path, held) // a second name for the old inode, as a reader with the file open would hold it
    const descriptor = openSync(path, "r")
    const inodeBefore = statSync(path).ino

    const after = Buffer.from("the new image, also whole, and longer")
    await Effect.runPromise(writeAtomically(path, after))

    expect(readFileSync(path)).toEqual(after)
    expect(statSync(path).ino).not.toBe(inodeBefore)
    expect(readFileSync(held)).toEqual(before)
    const buffer = Buffer.alloc(before.length + 16)
    const read = readSync(descriptor, buffer, 0, buffer.length, 0)
    expect(buffer.subarray(0, read)).toEqual(before)
  })
})
