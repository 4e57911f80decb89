/**
 * Cost, end to end against the simulator: the cache coalesces identical requests in flight (the ledger
 * shows one call), processes share a file cache, economy.yaml fails over to Google when the proxy is
 * down and never downgrades high priority, `peel estimate` (workload and request file, text and JSON,
 * located workload errors), and every `--json` cost adding up to the ledger.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Pipeline, Runner } from "@peel/core"
import { Simulator } from "@peel/simulator"
import { Effect, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadOptions } from "../src/plugins.ts"
import { peel, root, simulatorEnv } from "./cli.ts"

let simulator: Simulator.Handle
beforeAll(async () => {
  simulator = await Simulator.start({ port: 0, seed: 3, latency: "40ms" })
})
afterAll(() => simulator.stop())

const envFor = (url: string) => ({
  ...simulatorEnv(url),
  PROXY_NATIVE_BASE_URL: url,
})

/**
 * economy.yaml copied into a fresh folder, so its cache (`../.peel/cache`) is the test's own; with
 * `retryBase`, its first backoff step replaced (the rest of the file as it is).
 */
const economyCopy = (
  options: { readonly retryBase?: string } = {},
): { readonly file: string; readonly cacheDir: string } => {
  const folder = mkdtempSync(join(tmpdir(), "peel-cost-"))
  mkdirSync(join(folder, "pipelines"))
  const file = join(folder, "pipelines", "economy.yaml")
  const text = readFileSync(join(root, "pipelines", "economy.yaml"), "utf8")
  const retry = "retry: { attempts: 3, base: 1s,"
  if (options.retryBase !== undefined && !text.includes(retry)) throw new Error(`economy.yaml no longer has "${retry}"`)
  writeFileSync(
    file,
    options.retryBase === undefined ? text : text.replace(retry, `retry: { attempts: 3, base: ${options.retryBase},`),
  )
  return { file, cacheDir: join(folder, ".peel", "cache") }
}

const withRunner = <A, E>(file: string, use: (runner: Runner.RunnerShape) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Pipeline.load(file, { ...loadOptions, env: envFor(simulator.url) })
        const runner = yield* Runner.make(pipeline)
        return yield* use(runner)
      }),
    ),
  )

describe("cache against the simulator", () => {
  it("ten simultaneous identical requests make one upstream call; each gets the image", async () => {
    simulator.reset()
    const { file } = economyCopy()
    const outcomes = await withRunner(file, (runner) =>
      Stream.runCollect(
        runner.runAll(
          Array.from({ length: 10 }, (_, index) => ({
            id: `same-${index}`,
            prompt: "a lighthouse in a storm",
            use: "blog",
            aspectRatio: "16:9" as const,
          })),
          { concurrency: 10 },
        ),
      ),
    )
    const ledger = simulator.ledger()
    expect(ledger.totals.calls).toBe(1)
    const results = outcomes.map((outcome) => {
      if (outcome._tag !== "Done") throw new Error(`expected Done, got ${outcome._tag}`)
      return outcome.result
    })
    expect(results).toHaveLength(10)
    expect(results.filter((result) => result.cached)).toHaveLength(9)
    for (const result of results) expect([result.width, result.height]).toEqual([2752, 1536])
    const spent = results.reduce((sum, result) => sum + result.costUsd, 0)
    expect(spent).toBeCloseTo(ledger.totals.billedUsd, 9)
    expect(spent).toBe(0.05)
  })

  it("processes share a file cache: the later ones answer from what the first made", async () => {
    // Its own simulator (its ledger counts only these processes), in this process: one child fewer to start.
    const external = await Simulator.start({ port: 0, seed: 4 })
    try {
      const { file } = economyCopy()
      const env = envFor(external.url)
      const run = (...args: ReadonlyArray<string>) =>
        peel(["run", file, ...args, "--json", "--out", mkdtempSync(join(tmpdir(), "peel-out-"))], env)
      const linesOf = (stdout: string) =>
        stdout
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line))
      const first = await run("--prompt", "a quiet harbour at dawn", "--use", "social")
      expect(first.code).toBe(0)
      expect([JSON.parse(first.stdout).cached, JSON.parse(first.stdout).costUsd]).toEqual([false, 0.05])
      expect(external.ledger().totals.calls).toBe(1)
      // Two processes at once, on the first one's request and twelve prompts none has seen: the first's image
      // comes from the cache; each new image is made at most once per process, and whatever one wrote is
      // readable by the other.
      const bulk = join(mkdtempSync(join(tmpdir(), "peel-in-")), "requests.jsonl")
      writeFileSync(
        bulk,
        [
          { id: "harbour", prompt: "a quiet harbour at dawn", use: "social" },
          ...Array.from({ length: 12 }, (_, index) => ({ id: `p${index}`, prompt: `shared prompt ${index}` })),
        ]
          .map((line) => JSON.stringify(line))
          .join("\n"),
      )
      const both = await Promise.all([run("--input", bulk), run("--input", bulk)])
      expect(both.map((done) => done.code)).toEqual([0, 0])
      for (const done of both) {
        const harbour = linesOf(done.stdout).find((line) => line.id === "harbour")
        expect([harbour.cached, harbour.costUsd, harbour.channel]).toEqual([true, 0, "proxy"])
        expect(harbour.attempts).toEqual([expect.objectContaining({ cached: true, costUsd: 0 })])
      }
      const made = external.ledger().totals.calls - 1
      expect(made).toBeGreaterThanOrEqual(12)
      expect(made).toBeLessThanOrEqual(24)
      const third = linesOf((await run("--input", bulk)).stdout)
      expect(third).toHaveLength(13)
      expect(third.every((line) => line.cached === true && line.costUsd === 0)).toBe(true)
    } finally {
      await external.stop()
    }
  }, 60_000)
})

describe("economy.yaml", () => {
  it("fails over to Google when the proxy is down (its breaker stops calling it), and Peel's total equals the ledger", async () => {
    simulator.reset()
    simulator.script(
      "proxy-gemini",
      Array.from({ length: 30 }, () => "503" as const),
    )
    // Backoff from 10 ms instead of 1 s: the same retries, breaker and failover, without seconds of real sleep.
    const { file } = economyCopy({ retryBase: "10ms" })
    const results = await withRunner(file, (runner) =>
      Effect.forEach(["a", "b", "c", "d", "e", "f", "g"], (id) =>
        runner.run({ id, prompt: `failover ${id}`, use: "web" }),
      ),
    )
    const billed = simulator.ledger().totals.billedUsd
    simulator.reset()
    expect(new Set(results.map((result) => result.channel))).toEqual(new Set(["google"]))
    // Retries sit inside the breaker: five requests that failed on the proxy open it; then no more calls.
    const proxy = (index: number) => results[index]!.attempts.filter((attempt) => attempt.channel === "proxy")
    expect(proxy(0).map((attempt) => attempt.outcome)).toEqual(["Unavailable", "Unavailable", "Unavailable"])
    expect(proxy(6).map((attempt) => attempt.outcome)).toEqual(["CircuitOpen"])
    const spent = results.reduce((sum, result) => sum + result.costUsd, 0)
    expect(spent).toBeGreaterThan(0.5)
    expect(Math.round(billed * 100)).toBe(Math.round(spent * 100))
    expect(spent).toBeCloseTo(billed, 6)
  }, 60_000)

  it("never gives a high-priority image Flash or a smaller size than realtime.yaml does", async () => {
    const { file } = economyCopy()
    const uses = ["hero", "print", "large-display", "thumbnail", "social", "blog", "email", "web"]
    const plan = (path: string) =>
      withRunner(path, (runner) =>
        Effect.forEach(uses, (use) => runner.plan({ prompt: "x", use, priority: "high", urgency: "batch" })),
      )
    const economy = await plan(file)
    const realtime = await plan(join(root, "pipelines", "realtime.yaml"))
    const rank = (size: string) => ["512", "1K", "2K", "4K"].indexOf(size)
    economy.forEach((planned, index) => {
      expect(planned.model).toBe("gemini-3-pro-image")
      expect(rank(planned.size)).toBeGreaterThanOrEqual(rank(realtime[index]!.size))
    })
  })
})

describe("peel estimate", () => {
  it("prices the brief's workload on economy.yaml at most $450 a month, beside both baselines", async () => {
    const { code, stdout, stderr } = await peel([
      "estimate",
      "pipelines/economy.yaml",
      "--workload",
      "pipelines/workloads/brief.yaml",
      "--json",
    ])
    expect(code).toBe(0)
    expect(stderr).toContain("planning only")
    const report = JSON.parse(stdout)
    expect(report.totalUsd).toBeLessThanOrEqual(450)
    expect(report.baselineUsd).toBeGreaterThan(1340)
    expect(report.briefBaselineUsd).toBe(1340)
    expect(report.images).toBe(10_000)
    expect(report.cache).toMatchObject({ enabled: true, images: 2000 })
    expect(Object.keys(report.byChannel)).toContain("proxy")
    expect(report.byUrgency.batch.images).toBe(4000)
    expect(report.batch.requested).toBe(4000)

    const text = await peel(["estimate", "pipelines/economy.yaml", "--workload", "pipelines/workloads/brief.yaml"])
    expect(text.stdout).toContain("10,000 × $0.134 = $1,340.00")
    expect(text.stdout).toMatch(/10,000 images a month: \$\d{3}\.\d\d with this pipeline/)
  })

  it("prices a request file: repeats are cache hits when the pipeline has a cache", async () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-estimate-"))
    const input = join(folder, "requests.jsonl")
    writeFileSync(
      input,
      [
        { id: "a", prompt: "a fox", use: "hero" },
        { id: "b", prompt: "a  fox ", use: "print" },
        { id: "c", prompt: "an owl", priority: "low" },
      ]
        .map((line) => JSON.stringify(line))
        .join("\n"),
    )
    const economy = JSON.parse((await peel(["estimate", "pipelines/economy.yaml", "--input", input, "--json"])).stdout)
    expect(economy).toMatchObject({ per: "input", images: 3, calls: 2, totalUsd: 0.1 })
    const google = JSON.parse(
      (await peel(["estimate", "pipelines/google-direct.yaml", "--input", input, "--json"])).stdout,
    )
    expect(google.calls).toBe(3)
    expect(google.totalUsd).toBeGreaterThan(0.5)
  })

  it("reports a bad workload at FILE:LINE:COL and exits 2", async () => {
    const folder = mkdtempSync(join(tmpdir(), "peel-workload-"))
    const file = join(folder, "bad.yaml")
    writeFileSync(
      file,
      [
        "version: 1",
        "name: bad",
        "requestsPerMonth: 100",
        "priority: { high: 20%, normal: 50%, low: 20% }",
        "urgency: { batch: 140%, realtime: 0 }",
        "uses: { hero: 1 }",
      ].join("\n"),
    )
    const { code, stderr } = await peel(["estimate", "pipelines/economy.yaml", "--workload", file])
    expect(code).toBe(2)
    expect(stderr).toContain(`${file}:5:19: urgency.batch: expected a share`)
    expect(stderr).toContain(`${file}:6:1: unknown key "uses"`)
    const fixed = join(folder, "sum.yaml")
    writeFileSync(
      fixed,
      ["version: 1", "name: sum", "requestsPerMonth: 100", "priority: { high: 20%, low: 70% }"].join("\n"),
    )
    const sum = await peel(["estimate", "pipelines/economy.yaml", "--workload", fixed])
    expect(sum.code).toBe(2)
    expect(sum.stderr).toContain(`${fixed}:4:11: priority: the shares add up to 90%, not 100%`)
  })
})

describe("every cost path equals what the upstream billed", () => {
  const pipelineWith = (channels: ReadonlyArray<string>, order: ReadonlyArray<string>) => {
    const folder = mkdtempSync(join(tmpdir(), "peel-costpath-"))
    const file = join(folder, "pipeline.yaml")
    writeFileSync(
      file,
      [
        "version: 1",
        "name: cost-paths",
        "channels:",
        ...channels.map((line) => `  ${line}`),
        "stages:",
        `  - select: { strategy: ordered, channels: [${order.join(", ")}] }`,
        "  - generate: { timeout: 30s }",
      ].join("\n"),
    )
    return file
  }
  const google = 'google: { plugin: google-ai-studio, baseUrl: "${GEMINI_BASE_URL}", apiKey: "${GEMINI_API_KEY}" }'
  const vertex =
    'vertex: { plugin: vertex-ai, baseUrl: "${VERTEX_BASE_URL}", project: "${GOOGLE_CLOUD_PROJECT}", location: global, accessToken: "${VERTEX_ACCESS_TOKEN}" }'
  const openrouter =
    'openrouter: { plugin: openrouter, baseUrl: "${OPENROUTER_BASE_URL}", apiKey: "${OPENROUTER_API_KEY}" }'
  const native =
    'proxy: { plugin: google-ai-studio, auth: bearer, baseUrl: "${PROXY_NATIVE_BASE_URL}", apiKey: "${PROXY_API_KEY}", price: 0.05 }'
  const chat =
    'chat: { plugin: openai-compatible, preset: laozhang, baseUrl: "${PROXY_BASE_URL}", apiKey: "${PROXY_API_KEY}" }'

  const cases: ReadonlyArray<{
    readonly name: string
    readonly channels: ReadonlyArray<string>
    readonly order: ReadonlyArray<string>
    readonly script?: readonly [Simulator.RouteName, ReadonlyArray<Simulator.FaultKind>]
    readonly expected: (usd: number) => void
  }> = [
    {
      name: "tokens (AI Studio usageMetadata × catalog prices)",
      channels: [google],
      order: ["google"],
      expected: (usd) => expect(usd).toBeGreaterThan(0.134),
    },
    {
      name: "usage.cost (OpenRouter)",
      channels: [openrouter],
      order: ["openrouter"],
      expected: (usd) => expect(usd).toBeGreaterThan(0.134),
    },
    {
      name: "flat (proxy, Gemini-native route)",
      channels: [native],
      order: ["proxy"],
      expected: (usd) => expect(usd).toBe(0.05),
    },
    { name: "flat (proxy, chat route)", channels: [chat], order: ["chat"], expected: (usd) => expect(usd).toBe(0.05) },
    {
      name: "billed failure (a truncated image AI Studio charged for, then Vertex)",
      channels: [google, vertex],
      order: ["google", "vertex"],
      script: ["gemini", ["truncated"]],
      expected: (usd) => expect(usd).toBeGreaterThan(0.26),
    },
  ]
  for (const entry of cases)
    it(entry.name, async () => {
      simulator.reset()
      if (entry.script !== undefined) simulator.script(entry.script[0], entry.script[1])
      const file = pipelineWith(entry.channels, entry.order)
      const result = await withRunner(file, (runner) =>
        runner.run({ prompt: "a costed fox", size: "1K", aspectRatio: "1:1" }),
      )
      const ledger = simulator.ledger()
      expect(result.costUsd).toBeCloseTo(ledger.totals.billedUsd, 9)
      expect(result.attempts.reduce((sum, attempt) => sum + attempt.costUsd, 0)).toBeCloseTo(result.costUsd, 9)
      entry.expected(result.costUsd)
    })
})
