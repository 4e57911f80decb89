/**
 * `pnpm demo`: the offline tour. Starts the full simulator in-process (every upstream on one port, with
 * realistic long-tail latency scaled down 100×), points a checked-in pipeline at it, makes a handful of
 * images under `./out` — some after scripted upstream failures, to show failover — and prints what
 * happened: channel, model, size, latency, cost, and the simulator's own bill beside Peel's accounting.
 *
 * `pnpm demo -- --pipeline pipelines/demo.yaml` runs another pipeline; `--out DIR` changes the folder.
 *
 * @since 0.1.0
 */
import { rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Estimate, Money, type Request, Session } from "@peel/core"
import { Observe, Report, Stats, Summary } from "@peel/observability"
import { Simulator } from "@peel/simulator"
import { Effect, Result } from "effect"
import { printOpenError, rowOf, table } from "./output.ts"
import { loadOptions } from "./plugins.ts"

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(
    [
      "pnpm demo [-- --pipeline FILE --out DIR]",
      "",
      "The offline tour: starts the simulator in-process (every upstream, latency scaled down 100x), points a",
      "checked-in pipeline at it, makes a handful of images (some after scripted failures: retry, hedge,",
      "failover, breaker, fallback, placeholder, safety block, cache hit) and prints what happened beside the",
      "simulator's own bill. No key and no network needed.",
      "",
      "  --pipeline FILE  the pipeline to run (default pipelines/realtime.yaml; try pipelines/demo.yaml)",
      "  --out DIR        where images go (default ./out)",
      "  -h, --help       this help",
      "",
    ].join("\n"),
  )
  process.exit(0)
}

const argument = (name: string, fallback: string): string => {
  const index = process.argv.indexOf(`--${name}`)
  return index >= 0 && process.argv[index + 1] !== undefined ? process.argv[index + 1]! : fallback
}

interface Scene {
  readonly request: Request.ImageRequest
  readonly note: string
  /** Upstream failures to script before this request: [simulator route, faults]. */
  readonly faults?: ReadonlyArray<readonly [string, ReadonlyArray<string>]>
}

const scenes: ReadonlyArray<Scene> = [
  {
    request: { id: "thumbnail-fox", prompt: "a red fox in the snow, flat icon", use: "thumbnail" },
    note: "1K 1:1 fits the $0.05 proxy",
  },
  {
    request: { id: "blog-harbour", prompt: "a harbour at dawn, watercolour", use: "blog", aspectRatio: "16:9" },
    note: "2K: the proxy cannot, Google can",
  },
  {
    request: {
      id: "hero-mountains",
      prompt: "mountains above the clouds, cinematic",
      use: "hero",
      aspectRatio: "21:9",
    },
    note: "retry: AI Studio says 429 with RetryInfo; Peel waits what it asked (time-scaled) and retries",
    faults: [["gemini", ["429"]]],
  },
  {
    request: { id: "icon-lighthouse", prompt: "a lighthouse, flat icon", use: "thumbnail" },
    note: "hedge: the proxy hangs; after 3 s AI Studio is raced beside it, wins, and the proxy call is aborted",
    faults: [["proxy-chat", ["hang"]]],
  },
  {
    request: { id: "blocked", prompt: "something the model refuses", use: "web", aspectRatio: "1:1", size: "2K" },
    note: "a safety block stops at once: no retry, no failover, no fallback, nothing billed",
    faults: [["gemini", ["safety"]]],
  },
  {
    request: {
      id: "social-low",
      prompt: "a cup of coffee, top view",
      use: "social",
      priority: "low",
      aspectRatio: "4:5",
    },
    note: "low priority → Nano Banana 2 (gemini-3.1-flash-image)",
  },
  {
    request: { id: "print-poster", prompt: "a botanical poster of ferns", use: "print", aspectRatio: "3:4" },
    note: "failover: AI Studio 503 on every try; Vertex takes it",
    faults: [["gemini", ["503", "503", "503"]]],
  },
  {
    request: { id: "web-banner", prompt: "a web banner of rolling hills", use: "web", aspectRatio: "16:9" },
    note: "breaker: a second request AI Studio fails opens its circuit (2 failures in the demo)",
    faults: [["gemini", ["503", "503", "503"]]],
  },
  {
    request: { id: "email-header", prompt: "an email header with autumn leaves", use: "email", aspectRatio: "3:2" },
    note: "breaker open: AI Studio is skipped without a call",
  },
  {
    request: { id: "blog-fallback", prompt: "a quiet library, warm light", use: "blog", aspectRatio: "4:3" },
    note: "fallback: the Pro model fails on Vertex and OpenRouter too; Flash takes over",
    faults: [
      ["vertex", ["503", "503", "503"]],
      ["openrouter", ["503", "503", "503"]],
    ],
  },
  {
    request: { id: "web-placeholder", prompt: "a city skyline at night", use: "web", aspectRatio: "16:9" },
    note: "placeholder: everything fails within the request's 10 calls (AI Studio's circuit is open: Peel waits for its half-open trial, which fails too); a $0 neutral image of the size asked",
    faults: [
      ["gemini", ["503"]],
      ["vertex", ["503", "503", "503", "503", "503", "503"]],
      ["openrouter", ["503", "503", "503", "503", "503", "503"]],
    ],
  },
  {
    request: { id: "harbour-again", prompt: "a harbour at dawn,  watercolour", use: "blog", aspectRatio: "16:9" },
    note: "the blog-harbour image again (same prompt, size, ratio): from the cache, $0",
  },
]

const program = Effect.gen(function* () {
  const pipelineFile = argument("pipeline", "pipelines/realtime.yaml")
  const outDir = argument("out", "./out")
  const simulator = yield* Effect.acquireRelease(
    Effect.promise(() =>
      Simulator.start({ port: 0, seed: 7, latency: "lognormal:median=8s,p99=30s", timeScale: 0.01 }),
    ),
    (running) => Effect.promise(() => running.stop()),
  )
  const env = {
    ...process.env,
    GEMINI_BASE_URL: simulator.url,
    GEMINI_API_KEY: "demo-gemini-key",
    VERTEX_BASE_URL: simulator.url,
    GOOGLE_CLOUD_PROJECT: "peel-demo",
    GOOGLE_CLOUD_LOCATION: "global",
    VERTEX_ACCESS_TOKEN: "demo-vertex-token",
    OPENROUTER_BASE_URL: `${simulator.url}/api/v1`,
    OPENROUTER_API_KEY: "demo-openrouter-key",
    PROXY_BASE_URL: `${simulator.url}/v1`,
    PROXY_API_KEY: "demo-proxy-key",
    // Demo-friendly resilience timings (see the pipeline): hedge after 3 s (budget 100%), open a circuit after 2 failures.
    PEEL_HEDGE_INITIAL: "3s",
    PEEL_BREAKER_FAILURES: "2",
    PEEL_HEDGE_BUDGET: "1",
  }
  for (const id of scenes.map((scene) => scene.request.id)) rmSync(`${outDir}/${id}.png`, { force: true })
  // The call log (one JSON line per attempt and per request) and, at the end, the HTML report built from it.
  const callLog = join(outDir, "calls.jsonl")
  rmSync(callLog, { force: true })
  let observing: Observe.Observed | undefined
  const opened = yield* Effect.result(
    Session.open(pipelineFile, {
      out: outDir,
      load: { ...loadOptions, env },
      onWarning: (line) => process.stderr.write(`${line}\n`),
      observers: Effect.map(Observe.make({ callLog, pipeline: pipelineFile, requests: scenes.length }), (made) => {
        observing = made
        return made.observers
      }),
    }),
  )
  if (Result.isFailure(opened)) {
    printOpenError("peel demo", pipelineFile, opened.failure)
    return 2
  }
  const observed = observing!
  const runner = opened.success.runner
  process.stdout.write(`simulator listening on ${simulator.url}; pipeline ${pipelineFile}; images under ${outDir}\n\n`)

  const rows = []
  const made: Array<{ request: Request.ImageRequest; result: Request.ImageResult }> = []
  const notes: Array<string> = []
  let accounted = 0
  for (const scene of scenes) {
    for (const [route, faults] of scene.faults ?? []) simulator.script(route as never, faults as never)
    const result = yield* Effect.result(runner.run(scene.request))
    const row = Result.isSuccess(result)
      ? rowOf({ _tag: "Done", request: scene.request, result: result.success })
      : rowOf({ _tag: "Failed", request: scene.request, failure: result.failure })
    accounted += Result.isSuccess(result) ? result.success.costUsd : result.failure.costUsd
    const attempts = Result.isSuccess(result) ? result.success.attempts : result.failure.attempts
    const marks = (attempt: (typeof attempts)[number]) =>
      `${attempt.hedge === true ? " (hedge)" : ""}${attempt.fallback === true ? " (fallback)" : ""}${attempt.cached === true ? " (cached)" : ""}`
    notes.push(
      `${row.id}: ${scene.note}\n    ${attempts.map((attempt) => `${attempt.channel}:${attempt.outcome}${marks(attempt)}`).join(" → ")}`,
    )
    rows.push(row)
    if (Result.isSuccess(result)) made.push({ request: scene.request, result: result.success })
  }
  process.stdout.write(`${table(rows)}\n\n${notes.join("\n")}\n\n`)
  const ledger = simulator.ledger()
  process.stdout.write(
    `upstream calls ${ledger.totals.calls}, billed images ${ledger.totals.billedImages}; ` +
      `simulator billed ${Money.format(ledger.totals.billedUsd)}, Peel accounted ${Money.format(accounted)}\n`,
  )
  observed.writer?.flush()
  const read = Stats.read([callLog])
  const report = join(outDir, "report.html")
  writeFileSync(report, Report.html(Summary.summarize(read.lines), { title: "Peel demo", source: callLog }))
  process.stdout.write(
    `call log ${callLog} (${read.lines.length} lines: peel stats ${callLog}); report ${report} (open it in a browser)\n`,
  )
  // Batch work at half price, collected into the same folder (src/demoBatch.ts).
  yield* Effect.flatMap(
    Effect.promise(() => import("./demoBatch.ts")),
    (module) => module.batchDemo(simulator, outDir),
  )
  // The last line: what the real-time scenes cost, what Google direct would have cost, what the cache saved.
  process.stdout.write(`\nreal-time scenes — ${Estimate.costLine(accounted, yield* Estimate.afterRun(runner, made))}\n`)
  return 0
})

Effect.runPromise(Effect.scoped(program)).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = 1
  },
)
