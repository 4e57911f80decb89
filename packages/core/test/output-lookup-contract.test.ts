/**
 * The output lookup's contract (state/OutputLookup.ts): one suite run against the folder implementation
 * (the files are the index) and a `KeyValueStore`-backed one (told of each image with `record`). Then the
 * runner: its resume check asks the state's OutputLookup, live — an image another process wrote into the
 * folder after the runner opened it is skipped.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { KeyValueStore } from "effect/persistence"
import { afterEach } from "vitest"
import { Identity, Output, Pipeline, Runner, State } from "../src/index.ts"
import * as OutputLookup from "../src/state/OutputLookup.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const png = new Uint8Array(
  Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC", "base64"),
)
/** A memory `KeyValueStore` (effect/persistence). */
const memoryStore = Effect.provide(
  Effect.gen(function* () {
    return yield* KeyValueStore.KeyValueStore
  }),
  KeyValueStore.layerMemory,
)
const folder = () => mkdtempSync(join(tmpdir(), "peel-output-lookup-"))

/** Write an image as a run would (through an output folder of its own: another process), and tell the lookup. */
const write = (lookup: OutputLookup.OutputLookupShape, dir: string, id: string, hash: string, placeholder = false) =>
  Effect.gen(function* () {
    const output = yield* Output.open(dir)
    const file = yield* output.write(id, hash, png, "image/png", { placeholder })
    yield* lookup.record(dir, id, file, { hash, placeholder })
    return file
  })

const contract = (name: string, make: () => Effect.Effect<OutputLookup.OutputLookupShape>) =>
  describe(`output lookup contract: ${name}`, () => {
    it.effect("missing, then current for the identity it was made from, changed for another", () =>
      Effect.gen(function* () {
        const lookup = yield* make()
        const dir = folder()
        expect(yield* lookup.lookup(dir, "cover", "identity-a")).toEqual({ _tag: "Missing" })
        const file = yield* write(lookup, dir, "cover", "identity-a")
        expect(yield* lookup.lookup(dir, "cover", "identity-a")).toEqual({ _tag: "Current", file })
        expect(yield* lookup.lookup(dir, "cover", "identity-b")).toEqual({ _tag: "Changed", file })
        expect(yield* lookup.lookup(dir, "other", "identity-a")).toEqual({ _tag: "Missing" })
        // made again for the new identity: current for it
        yield* write(lookup, dir, "cover", "identity-b")
        expect(yield* lookup.lookup(dir, "cover", "identity-b")).toEqual({ _tag: "Current", file })
      }),
    )

    it.effect("a placeholder is changed (tried again) until the real image replaces it", () =>
      Effect.gen(function* () {
        const lookup = yield* make()
        const dir = folder()
        const file = yield* write(lookup, dir, "cover", "identity-a", true)
        expect(yield* lookup.lookup(dir, "cover", "identity-a")).toEqual({ _tag: "Changed", file, placeholder: true })
        yield* write(lookup, dir, "cover", "identity-a")
        expect(yield* lookup.lookup(dir, "cover", "identity-a")).toEqual({ _tag: "Current", file })
      }),
    )

    it.effect("is live: what another writer adds after the lookup was made is seen at once", () =>
      Effect.gen(function* () {
        const lookup = yield* make()
        const dir = folder()
        expect(yield* lookup.lookup(dir, "late", "identity-a")).toEqual({ _tag: "Missing" })
        const file = yield* write(lookup, dir, "late", "identity-a")
        expect(yield* lookup.lookup(dir, "late", "identity-a")).toEqual({ _tag: "Current", file })
      }),
    )
  })

contract("folder", () => Effect.succeed(OutputLookup.folder))
contract("KeyValueStore (memory)", () => Effect.map(memoryStore, (store) => OutputLookup.fromKeyValueStore(store)))

describe("the runner's resume check asks the state's OutputLookup", () => {
  afterEach(() => Fixture.reset())
  const pipelineFile = () => {
    const file = join(folder(), "pipeline.yaml")
    writeFileSync(
      file,
      [
        "version: 1",
        "name: output-lookup",
        "channels:",
        `  main: { plugin: ${join(import.meta.dirname, "fixtures", "fixture-plugin.ts")}, price: 0.134 }`,
        "stages:",
        "  - generate: { timeout: 5s }",
      ].join("\n"),
    )
    return file
  }

  it.effect("an image another process wrote after the runner opened the folder is skipped, not made again", () =>
    Effect.gen(function* () {
      const out = folder()
      const runner = yield* Runner.make(yield* Pipeline.load(pipelineFile(), { env: {} }), { outDir: out })
      const request = { id: "cover", prompt: "a red fox" }
      // the other process: same request, same identity, written after this runner opened `out`
      yield* write(OutputLookup.folder, out, "cover", Identity.of(yield* runner.plan(request)))
      const outcomes = yield* Stream.runCollect(runner.runAll([request]))
      expect(outcomes.map((outcome) => outcome._tag)).toEqual(["Skipped"])
      expect(Fixture.calls.get("main")?.length ?? 0).toBe(0)
    }).pipe(Effect.scoped),
  )

  it.effect("a state whose OutputLookup keeps records elsewhere is what the runner consults and tells", () =>
    Effect.gen(function* () {
      const store = yield* memoryStore
      const lookup = OutputLookup.fromKeyValueStore(store)
      const state = Layer.merge(State.layerMemory, Layer.succeed(OutputLookup.OutputLookup, lookup))
      const out = folder()
      const file = pipelineFile()
      const request = { id: "cover", prompt: "a red fox" }
      const first = yield* Runner.make(yield* Pipeline.load(file, { env: {} }), { outDir: out, state })
      expect((yield* Stream.runCollect(first.runAll([request]))).map((outcome) => outcome._tag)).toEqual(["Done"])
      // the runner told the store of the image it wrote…
      const identity = Identity.of(yield* first.plan(request))
      expect((yield* lookup.lookup(out, "cover", identity))._tag).toBe("Current")
      // …and with the folder's copy gone, a runner over the same records still skips it: the state's records
      // decide (a store keeping outputs elsewhere holds them there), not this process's view of the folder
      rmSync(join(out, "cover.png"))
      rmSync(join(out, "cover.png.json"))
      const second = yield* Runner.make(yield* Pipeline.load(file, { env: {} }), { outDir: out, state })
      expect((yield* Stream.runCollect(second.runAll([request]))).map((outcome) => outcome._tag)).toEqual(["Skipped"])
      expect(Fixture.calls.get("main")?.length).toBe(1)
    }).pipe(Effect.scoped),
  )
})
