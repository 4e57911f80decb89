/**
 * `peel stats CALLS.jsonl... [--json]`: the report's summary in the terminal — requests, upstream calls,
 * billed images, dollars, cost per image, cache hit rate, latency p50/p99 per channel, errors by type,
 * spend by model, alerts. `--json` prints the summary as one JSON object (without the time buckets).
 * `--by key` prints one row per virtual key instead (requests, billed images, spend; gateway logs), or with
 * `--json` one JSON object per key.
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
  /** Group by: `key` (virtual keys). */
  readonly by?: string
}

export const stats = (options: StatsOptions): Effect.Effect<number> =>
  Effect.sync(() => {
    const lines = readLogs("stats", options.files)
    if (lines === undefined) return ExitCode.usage
    if (options.by !== undefined && options.by !== "key") {
      process.stderr.write(`stats: --by takes key, got "${options.by}"\n`)
      return ExitCode.usage
    }
    const summary = Summary.summarize(lines)
    if (options.by === "key") {
      if (options.json) for (const key of summary.keys) process.stdout.write(`${JSON.stringify(key)}\n`)
      else process.stdout.write(`${Stats.keysText(summary)}\n`)
    } else if (options.json) {
      const { buckets: _buckets, bucketMs: _bucketMs, ...rest } = summary
      process.stdout.write(`${JSON.stringify(rest)}\n`)
    } else process.stdout.write(`${Stats.text(summary)}\n`)
    return ExitCode.ok
  })
