/**
 * `peel stats CALLS.jsonl... [--json]`: the report's summary in the terminal — requests, upstream calls,
 * billed images, dollars, cost per image, cache hit rate, latency p50/p99 per channel, errors by type,
 * spend by model, alerts. `--json` prints the summary as one JSON object (without the time buckets).
 *
 * @since 0.1.0
 */
import { Stats, Summary } from "@peel/observability"
import { Effect } from "effect"
import { ExitCode } from "../output.ts"
import { readLogs } from "./report.ts"

export interface StatsOptions {
  readonly files: ReadonlyArray<string>
  readonly json: boolean
}

export const stats = (options: StatsOptions): Effect.Effect<number> =>
  Effect.sync(() => {
    const lines = readLogs("stats", options.files)
    if (lines === undefined) return ExitCode.usage
    const summary = Summary.summarize(lines)
    if (options.json) {
      const { buckets: _buckets, bucketMs: _bucketMs, ...rest } = summary
      process.stdout.write(`${JSON.stringify(rest)}\n`)
    } else process.stdout.write(`${Stats.text(summary)}\n`)
    return ExitCode.ok
  })
