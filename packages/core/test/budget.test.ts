/**
 * Budgets: reserve-then-settle never passes the cap, whatever the interleaving (many randomised runs
 * with 64 requests in flight), in memory and in SQLite shared by several processes; refusals are typed
 * with the numbers; spend survives a restart; windows roll over; the stage settles billed failures.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { afterEach, describe, expect, it } from "vitest"
import { Budget, Journal, Pipeline, Runner } from "../src/index.ts"
import { middleware } from "../src/stages/budget.ts"
import * as Fixture from "./fixtures/fixture-plugin.ts"

const fixtures = join(import.meta.dirname, "fixtures")

/** A small seeded generator (mulberry32), so a failing interleaving can be replayed. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const channel = (name: string, price: number) =>
  [
    name,
    {
      name,
      plugin: "test",
      capabilities: { models: ["gemini-3-pro-image"] },
      price: () => price,
      generate: () => Effect.die("unused"),
    },
  ] as const

const plan = (candidates: ReadonlyArray<string>) =>
  ({
    id: "p",
    request: { prompt: "x" },
    channelRequest: { id: "p", prompt: "x", model: "gemini-3-pro-image", size: "2K", aspectRatio: "1:1" },
    model: "gemini-3-pro-image",
    size: "2K",
    aspectRatio: "1:1",
    candidates,
    refused: [],
    limits: { maxPromptChars: 1000 },
    adjustments: [],
    promptHash: "h",
  }) as const

const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC",
  "base64",
)

/**
 * 64 requests in flight at once against `ledger`, each yielding a random number of times (a random
 * interleaving), then costing a random amount no more than its reservation (sometimes a billed failure).
 */
const stampede = (ledger: Budget.Ledger, seed: number) =>
  Effect.gen(function* () {
    const next = random(seed)
    const channels = new Map([channel("cheap", 0.05), channel("main", 0.134), channel("dear", 0.24)])
    const choices = [["cheap"], ["main"], ["cheap", "main"], ["dear"], ["main", "dear"]] as const
    let refusals = 0
    const handler = middleware(
      ledger,
      channels,
    )((p) =>
      Effect.gen(function* () {
        const journal = yield* Journal.Journal
        for (let i = Math.floor(next() * 20); i > 0; i--) yield* Effect.yieldNow
        const most = Budget.reservationOf(p, channels)
        const cost = Math.round(next() * most * 1e6) / 1e6
        journal.record({
          channel: "main",
          model: p.model,
          size: p.size,
          startedAt: 0,
          latencyMs: 1,
          outcome: next() < 0.2 ? "MalformedResponse" : "ok",
          costUsd: cost,
        })
        for (let i = Math.floor(next() * 5); i > 0; i--) yield* Effect.yieldNow
        return {
          channel: "main",
          model: p.model,
          size: p.size,
          aspectRatio: p.aspectRatio,
          image: { bytes: png, mimeType: "image/png" },
          info: { mimeType: "image/png", width: 4, height: 3 },
          cached: false,
          placeholder: false,
        }
      }),
    )
    let peak = 0
    yield* Effect.forEach(
      Array.from({ length: 64 }, (_, index) => index),
      () =>
        Effect.gen(function* () {
          for (let i = Math.floor(next() * 10); i > 0; i--) yield* Effect.yieldNow
          const candidates = choices[Math.floor(next() * choices.length)]!
          const exit = yield* Effect.exit(
            handler(plan(candidates)).pipe(Effect.provideService(Journal.Journal, Journal.make(0))),
          )
          if (Exit.isFailure(exit)) refusals += 1
          const status = ledger.status(0)
          peak = Math.max(peak, status.spentUsd + status.reservedUsd)
        }),
      { concurrency: 64, discard: true },
    )
    return { status: ledger.status(0), refusals, peak }
  })

afterEach(() => Fixture.reset())

describe("budget ledger", () => {
  it("never passes the cap with 64 in flight, over many randomised interleavings (memory)", async () => {
    for (let seed = 1; seed <= 200; seed++) {
      const limit = 0.5 + random(seed * 7)() * 3
      const ledger = Budget.memory({ limitUsd: limit, windowMillis: 86_400_000 })
      const { status, refusals, peak } = await Effect.runPromise(stampede(ledger, seed))
      expect(status.spentUsd).toBeLessThanOrEqual(limit)
      expect(peak).toBeLessThanOrEqual(limit + 1e-9)
      expect(status.reservedUsd).toBe(0)
      if (limit < 2) expect(refusals).toBeGreaterThan(0)
    }
  })

  it("never passes the cap in SQLite either, and the spend survives a restart", async () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-budget-"))
    for (let seed = 1; seed <= 20; seed++) {
      const path = join(folder, `b${seed}.sqlite`)
      const ledger = Budget.sqlite({ limitUsd: 1.5, windowMillis: 86_400_000 }, { path, name: "t" })
      const { status } = await Effect.runPromise(stampede(ledger, seed))
      ledger.close()
      expect(status.spentUsd).toBeLessThanOrEqual(1.5)
      const reopened = Budget.sqlite({ limitUsd: 1.5, windowMillis: 86_400_000 }, { path, name: "t" })
      expect(reopened.status(0).spentUsd).toBe(status.spentUsd)
      reopened.close()
    }
  })

  it("refuses with the numbers, rolls over with the window, and releases a dead process's reservation", () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-budget-"))
    const day = 86_400_000
    const ledger = Budget.sqlite(
      { limitUsd: 0.3, windowMillis: day },
      { path: join(folder, "b.sqlite"), name: "t", leaseMillis: 1000 },
    )
    const first = ledger.reserve(0.134, 10)
    const second = ledger.reserve(0.134, 10)
    const third = ledger.reserve(0.134, 10)
    expect("_tag" in first || "_tag" in second).toBe(false)
    expect(third).toMatchObject({ _tag: "Refused", requestedUsd: 0.134, status: { spentUsd: 0, reservedUsd: 0.268 } })
    expect(Budget.refusalMessage(third as Budget.Refused)).toContain("$0.2680 reserved")
    // The holders never settle (their process died): after the lease, the room is back.
    expect("_tag" in ledger.reserve(0.134, 2000)).toBe(false)
    // Next day, a fresh window.
    expect(ledger.status(day + 1)).toMatchObject({ spentUsd: 0, reservedUsd: 0, windowStart: day })
    ledger.close()
  })

  it("holds across processes sharing one SQLite file", async () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-budget-"))
    const path = join(folder, "shared.sqlite")
    const module = join(import.meta.dirname, "..", "src", "spend", "Budget.ts")
    const script = join(folder, "worker.ts")
    writeFileSync(
      script,
      `import * as Budget from ${JSON.stringify(module)}
const ledger = Budget.sqlite({ limitUsd: 5, windowMillis: 86_400_000 }, { path: ${JSON.stringify(path)}, name: "shared" })
let made = 0
for (let i = 0; i < 200; i++) {
  const r = ledger.reserve(0.134, Date.now())
  if ("_tag" in r) continue
  await new Promise((resolve) => setTimeout(resolve, Math.random() * 3))
  ledger.settle(r, Math.random() < 0.5 ? 0.134 : 0.1)
  made++
}
ledger.close()
console.log(made)
`,
    )
    const run = () =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] })
        let out = ""
        child.stdout.on("data", (chunk: Buffer) => {
          out += chunk.toString()
        })
        child.on("error", reject)
        child.on("close", (code) =>
          code === 0 ? resolve(Number(out.trim())) : reject(new Error(`worker exited ${code}`)),
        )
      })
    const made = await Promise.all([run(), run(), run(), run()])
    const ledger = Budget.sqlite({ limitUsd: 5, windowMillis: 86_400_000 }, { path, name: "shared" })
    const status = ledger.status(Date.now())
    ledger.close()
    // (On a loaded machine one worker may start after the others have used the cap up: it makes nothing.)
    expect(made.reduce((sum, count) => sum + count, 0)).toBeGreaterThanOrEqual(Math.floor((5 - 0.268) / 0.134))
    expect(status.spentUsd).toBeLessThanOrEqual(5)
    expect(status.spentUsd).toBeGreaterThan(5 - 0.134 * 2)
    expect(status.reservedUsd).toBe(0)
  }, 60_000)
})

describe("budget stage", () => {
  const file = (limit: number) => {
    const folder = mkdtempSync(join(tmpdir(), "peel-budget-stage-"))
    const path = join(folder, "pipeline.yaml")
    writeFileSync(
      path,
      [
        "version: 1",
        "name: budget-test",
        "channels:",
        `  main: { plugin: ${join(fixtures, "fixture-plugin.ts")}, price: 0.134 }`,
        `  backup: { plugin: ${join(fixtures, "fixture-plugin.ts")}, price: 0.2 }`,
        "stages:",
        `  - budget: { limit: ${limit}, window: 1d, store: file, path: budget.sqlite }`,
        "  - select: { strategy: ordered, channels: [main, backup] }",
        "  - generate: { timeout: 5s }",
      ].join("\n"),
    )
    return path
  }

  it("reserves the dearest candidate, settles billed failures, and refuses with BudgetExceeded before any call", async () => {
    Fixture.scripts.set("main", ["Truncated"])
    const path = file(0.6)
    const exits = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const runner = yield* Runner.make(yield* Pipeline.load(path, { env: {} }))
          const out = []
          // 1: main billed a truncated image (0.134), backup made it (0.2) → 0.334 spent.
          // 2: reserves 0.2 → 0.534 ≤ 0.6; costs 0.134 → 0.468.
          // 3: 0.468 + 0.2 > 0.6 → refused, no call.
          for (const id of ["a", "b", "c"]) out.push(yield* Effect.exit(runner.run({ prompt: `x ${id}`, id })))
          return out
        }),
      ).pipe(Effect.provide(TestClock.layer())),
    )
    expect(exits.map(Exit.isSuccess)).toEqual([true, true, false])
    const failure = exits[2]!
    if (Exit.isSuccess(failure)) return
    const error = (failure.cause.reasons.find((reason) => reason._tag === "Fail") as { error: Runner.RunFailure }).error
    expect(error.reason).toMatchObject({ _tag: "BudgetExceeded", limitUsd: 0.6, spentUsd: 0.468 })
    expect(error.costUsd).toBe(0)
    expect((Fixture.calls.get("main") ?? []).length + (Fixture.calls.get("backup") ?? []).length).toBe(3)
    // The spend is in the file: a new runner (a restart) sees it.
    const again = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const runner = yield* Runner.make(yield* Pipeline.load(path, { env: {} }))
          return yield* Effect.exit(runner.run({ prompt: "x d", id: "d" }))
        }),
      ).pipe(Effect.provide(TestClock.layer())),
    )
    expect(Exit.isFailure(again)).toBe(true)
  })

  it("reports a file store without a path, and a bad window, at line:col", async () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-budget-stage-"))
    const path = join(folder, "pipeline.yaml")
    writeFileSync(
      path,
      [
        "version: 1",
        "name: budget-bad",
        "channels:",
        `  main: { plugin: ${join(fixtures, "fixture-plugin.ts")} }`,
        "stages:",
        "  - budget: { limit: 5, window: 1 week, store: file }",
        "  - generate: {}",
      ].join("\n"),
    )
    const exit = await Effect.runPromiseExit(Pipeline.load(path, { env: {} }))
    expect(Exit.isFailure(exit)).toBe(true)
    expect(String(exit)).toContain("expected a window such as 1d")
  })
})

describe("run-level cap (--max-spend)", () => {
  it("admits while the next request fits, waits while others are in flight, and stops when nothing is", async () => {
    const cap = Budget.runCap(0.3, 1)
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const first = yield* cap.admit(["a"], 0.134)
        const second = yield* cap.admit(["b"], 0.134)
        // c could pass the cap while a and b are in flight: it waits; a was a cache hit ($0), so c fits.
        const waiting = yield* Effect.forkChild(cap.admit(["c"], 0.134))
        yield* Effect.sleep(20)
        cap.settle("a", 0)
        const third = yield* Fiber.join(waiting)
        cap.settle("b", 0.134)
        cap.settle("c", 0.134)
        // 0.268 spent, nothing in flight: d (0.134) could pass 0.3, so the run stops.
        const fourth = yield* cap.admit(["d"], 0.134)
        return { admitted: [first, second, third, fourth], status: cap.status(), refused: cap.refused() }
      }),
    )
    expect(result.admitted).toEqual([true, true, true, false])
    expect(result.status).toMatchObject({ spentUsd: 0.268, reservedUsd: 0 })
    expect(result.refused).toMatchObject({ requestedUsd: 0.134, status: { spentUsd: 0.268 } })
  })

  it("reserves a request of n images as one, and settles it when every image has ended", async () => {
    const cap = Budget.runCap(1, 1)
    const admitted = await Effect.runPromise(cap.admit(["x-1", "x-2", "x-3"], 0.2))
    expect(admitted).toBe(true)
    expect(cap.status()).toMatchObject({ reservedUsd: 0.6, spentUsd: 0 })
    cap.settle("x-1", 0.2)
    cap.settle("x-2", 0)
    expect(cap.status()).toMatchObject({ reservedUsd: 0.6, spentUsd: 0 })
    cap.settle("x-3", 0.2)
    expect(cap.status()).toMatchObject({ reservedUsd: 0, spentUsd: 0.4 })
    expect(await Effect.runPromise(cap.admit(["y-1", "y-2"], 0.31))).toBe(false)
  })
})
