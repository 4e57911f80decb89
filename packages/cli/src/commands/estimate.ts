/**
 * `peel estimate PIPELINE (--input REQUESTS.jsonl | --workload WORKLOAD.yaml) [--json]`: the pipeline's
 * planning only — nobody is called, no key is needed (required `${VAR}`s that are unset get a stand-in,
 * and stderr says so) — priced by channel, model, size and urgency against the same work at Google's
 * standard price. A workload gives figures per month, and the brief's own baseline beside them.
 *
 * `--json`: one object, `Estimate.Report` (`totalUsd`, `baselineUsd`, breakdowns).
 *
 * @since 0.3.0
 */
import { readFileSync } from "node:fs"
import { Estimate, type Request, Requests, Session, Workload } from "@peel/core"
import { Effect, Result } from "effect"
import { ExitCode, printOpenError, printProblems } from "../output.ts"
import { loadOptions } from "../plugins.ts"

export interface EstimateOptions {
  readonly file: string
  readonly input?: string
  readonly workload?: string
  readonly json: boolean
}

/** `${VAR}` (required, no `:-default`) names in a pipeline file; none when it cannot be read (the loader says why). */
const requiredVariables = (file: string): ReadonlyArray<string> => {
  try {
    return [...readFileSync(file, "utf8").matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((match) => match[1]!)
  } catch {
    return []
  }
}

/** A stand-in for unset secrets: long enough not to look like a placeholder to the channels' checks. */
const standIn = "peel-estimate-makes-no-calls"

const count = (value: number): string =>
  Number.isInteger(value) ? value.toLocaleString("en-US") : value.toLocaleString("en-US", { maximumFractionDigits: 1 })
const usd = (value: number): string =>
  `$${value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`
const percent = (part: number, whole: number): string => (whole === 0 ? "0%" : `${Math.round((part / whole) * 100)}%`)

const breakdown = (title: string, table: Readonly<Record<string, Estimate.Slice>>): string => {
  const rows = Object.entries(table).map(([key, slice]) => [
    key,
    count(slice.images),
    usd(slice.usd),
    usd(slice.baselineUsd),
  ])
  const header = [title, "images", "cost", "google std"]
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column]!.length)))
  const format = (row: ReadonlyArray<string>) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("  ")
  return [format(header), ...rows.map(format)].join("\n")
}

/** The report as text. */
export const render = (report: Estimate.Report, source: string): string => {
  const per = report.per === "month" ? " a month" : ""
  const lines = [
    `${report.pipeline} on ${source}${report.per === "month" ? " (per month)" : ""}`,
    `${count(report.images)} images${per}: ${usd(report.totalUsd)} with this pipeline, ${usd(report.baselineUsd)} at Google's standard price (${percent(report.savedUsd, report.baselineUsd)} less)`,
  ]
  if (report.briefBaselineUsd !== undefined)
    lines.push(
      `the brief's baseline: ${count(Estimate.brief.imagesPerMonth)} × $${Estimate.brief.usdPerImage} = ${usd(report.briefBaselineUsd)} (every image 1K/2K Pro; this workload's 4K uses make Google's price ${usd(report.baselineUsd)})`,
    )
  lines.push(
    report.cache.enabled
      ? `cache (ttl ${Math.round((report.cache.ttlMillis ?? 0) / 60_000)} min): ${count(report.cache.images)} images from the cache, ${usd(report.cache.savedUsd)} saved; ${count(report.calls)} upstream calls`
      : `no cache: ${count(report.calls)} upstream calls`,
  )
  if (report.batch.requested > 0)
    lines.push(
      report.batch.inBatch >= report.batch.requested
        ? `batch: ${count(report.batch.requested)} images go to a batch channel (half price)`
        : `batch: ${count(report.batch.requested)} images are urgency: batch; ${count(report.batch.requested - report.batch.inBatch)} of them made in real time (no batch channel takes them) — Google's Batch API would take ${usd(report.batch.wouldSaveUsd)} off`,
    )
  if (report.hedging !== undefined)
    lines.push(
      `hedging: up to ${Math.round(report.hedging.budget * 100)}% of calls may be hedges, each a second paid call: up to ${usd(report.hedging.upToUsd)} more`,
    )
  if (report.unservable > 0) lines.push(`${count(report.unservable)} images no channel of this pipeline can serve`)
  lines.push(
    "",
    breakdown("channel", report.byChannel),
    "",
    breakdown("model", report.byModel),
    "",
    breakdown("size", report.bySize),
    "",
    breakdown("urgency", report.byUrgency),
  )
  return lines.join("\n")
}

export const estimate = Effect.fn("estimate")(function* (options: EstimateOptions) {
  if ((options.input === undefined) === (options.workload === undefined)) {
    process.stderr.write("peel estimate: give exactly one of --input REQUESTS.jsonl or --workload WORKLOAD.yaml\n")
    return ExitCode.usage
  }
  let work: Workload.Workload | undefined
  let requests: ReadonlyArray<Request.ImageRequest> = []
  if (options.workload !== undefined) {
    const loaded = yield* Effect.result(Workload.load(options.workload))
    if (Result.isFailure(loaded)) {
      printProblems(loaded.failure.problems)
      return ExitCode.usage
    }
    work = loaded.success
  } else {
    // Estimates count lines: the same request twice is priced twice.
    const read = yield* Effect.result(Requests.read(options.input!, { uniqueIds: false }))
    if (Result.isFailure(read)) {
      for (const problem of read.failure.problems) process.stderr.write(`${problem.format()}\n`)
      return ExitCode.usage
    }
    requests = read.success
  }

  // Planning needs no keys: every required `${VAR}` that is unset gets a stand-in (nothing is called), so
  // every channel is planned for, including optional ones.
  const unset = [...new Set(requiredVariables(options.file))].filter((name) => process.env[name] === undefined)
  if (unset.length > 0)
    process.stderr.write(`peel estimate: ${unset.join(", ")} not set: planning only, nobody is called\n`)
  const env = { ...process.env, ...Object.fromEntries(unset.map((name) => [name, standIn])) }
  return yield* Effect.scoped(
    Effect.gen(function* () {
      const opened = yield* Effect.result(
        Session.open(options.file, {
          load: { ...loadOptions, env },
          onWarning: (line) => process.stderr.write(`${line}\n`),
        }),
      )
      if (Result.isFailure(opened)) {
        printOpenError("peel estimate", options.file, opened.failure)
        return ExitCode.usage
      }
      const runner = opened.success.runner
      const report =
        work === undefined ? yield* Estimate.requests(runner, requests) : yield* Estimate.workload(runner, work)
      for (const invalid of report.invalid) process.stderr.write(`${invalid.id}: ${invalid.message}\n`)
      if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`)
      else process.stdout.write(`${render(report, options.workload ?? options.input!)}\n`)
      return ExitCode.ok
    }),
  )
})
