/**
 * `peel report CALLS.jsonl... --out report.html`: one self-contained HTML page (inline SVG charts, no
 * scripts, no network) from one or more call logs — a log and its rotated parts (`calls.jsonl*`), or
 * several runs. Lines that cannot be decoded (a fragment left by a crash, another program's lines) are
 * skipped and counted on stderr. Exit 2 when a file cannot be read or holds no call-log line.
 *
 * @since 0.1.0
 */
import { basename } from "node:path"
import { Output } from "@peel/core"
import { Report, Stats, Summary } from "@peel/observability"
import { Effect } from "effect"
import { ExitCode } from "../output.ts"

export interface ReportOptions {
  readonly files: ReadonlyArray<string>
  readonly out: string
  readonly title?: string
}

/** Read the logs, or say why not (on stderr) and give the exit code. */
export const readLogs = (command: string, files: ReadonlyArray<string>) => {
  const read = Stats.read(files)
  for (const problem of read.unreadable) process.stderr.write(`peel ${command}: ${problem}\n`)
  if (read.unreadable.length > 0) return undefined
  if (read.problems.length > 0) {
    for (const problem of read.problems.slice(0, 5)) process.stderr.write(`warning: ${problem}\n`)
    if (read.problems.length > 5) process.stderr.write(`warning: ... ${read.problems.length - 5} more\n`)
    process.stderr.write(`peel ${command}: skipped ${read.problems.length} line(s) that are not call-log lines\n`)
  }
  if (read.lines.length === 0) {
    process.stderr.write(
      `peel ${command}: ${files.join(", ")}: no call-log lines (write one with peel run --call-log FILE)\n`,
    )
    return undefined
  }
  return read.lines
}

export const report = (options: ReportOptions): Effect.Effect<number> =>
  Effect.suspend(() => {
    const lines = readLogs("report", options.files)
    if (lines === undefined) return Effect.succeed(ExitCode.usage)
    const summary = Summary.summarize(lines)
    const page = Report.html(summary, {
      ...(options.title === undefined ? {} : { title: options.title }),
      source: options.files.map((file) => basename(file)).join(", "),
    })
    // The one atomic write (temporary file beside it, then rename): a reader never sees half a page.
    return Output.writeAtomically(options.out, new TextEncoder().encode(page)).pipe(
      Effect.match({
        onFailure: (error) => {
          process.stderr.write(`peel report: ${error.message}\n`)
          return ExitCode.usage
        },
        onSuccess: () => {
          process.stdout.write(
            `report written to ${options.out} (${summary.requests.total} requests, ${summary.calls} calls, ${Stats.money(summary.spentUsd)})\n`,
          )
          return ExitCode.ok
        },
      }),
    )
  })
