/**
 * Printing: problems to stderr as `FILE:LINE:COL: message`, results as JSON lines or rows printed as each
 * request finishes (a bulk run keeps counts, never a row per request), and a progress bar on stderr when
 * it is a terminal.
 *
 * @since 0.1.0
 */
import { type Errors, Money, Output, Request, type Runner, type Session } from "@peel/core"

/**
 * Exit codes (DESIGN §7): 0 success, 1 some requests failed, 2 usage or configuration error; 130 and 143
 * when SIGINT or SIGTERM stopped the run (128 + the signal's number).
 */
export const ExitCode = { ok: 0, failed: 1, usage: 2, sigint: 130, sigterm: 143 } as const

/** What an outcome cost: the image, every billed attempt of a failed request, or nothing for a skipped one. */
export const costOf = (outcome: Runner.Outcome): number => {
  switch (outcome._tag) {
    case "Done":
      return outcome.result.costUsd
    case "Skipped":
      return 0
    case "Failed":
      return outcome.failure.costUsd
  }
}

export const printProblems = (problems: ReadonlyArray<Errors.ConfigProblem>): void => {
  for (const problem of problems) process.stderr.write(`${problem.format()}\n`)
}

const money = Money.format

/**
 * Why a session did not open, on stderr: every located problem of a pipeline, or one line — the output
 * folder or the call log after `command`, a missing secret after the pipeline file.
 */
export const printOpenError = (command: string, file: string, error: Session.OpenError<Error>): void => {
  if ("_tag" in error && error._tag === "ConfigError") printProblems(error.problems)
  else if ("_tag" in error && error._tag === "MissingSecret") process.stderr.write(`${file}: ${error.message}\n`)
  else process.stderr.write(`${command}: ${error.message}\n`)
}

/** A row of the summary table. */
export interface Row {
  readonly id: string
  readonly status: string
  readonly channel: string
  readonly model: string
  readonly size: string
  readonly latency: string
  readonly cost: string
  readonly file: string
}

export const rowOf = (outcome: Runner.Outcome): Row => {
  switch (outcome._tag) {
    case "Done": {
      const result = outcome.result
      return {
        id: result.id,
        status: "ok",
        channel: result.channel,
        model: result.model,
        size: `${result.size} ${result.aspectRatio} (${result.width}×${result.height})`,
        latency: `${Math.round(result.latencyMs)} ms`,
        cost: money(result.costUsd),
        file: result.file ?? "",
      }
    }
    case "Skipped":
      return {
        id: outcome.id,
        status: "skipped",
        channel: "",
        model: "",
        size: "",
        latency: "",
        cost: money(0),
        file: outcome.file,
      }
    case "Failed":
      return {
        id: outcome.failure.id,
        status: outcome.failure.reason._tag,
        channel: outcome.failure.attempts.at(-1)?.channel ?? "",
        model: outcome.failure.attempts.at(-1)?.model ?? "",
        size: "",
        latency: "",
        cost: money(costOf(outcome)),
        file: Output.rescuedTo(outcome.failure.reason) ?? "",
      }
  }
}

const headers: Row = {
  id: "id",
  status: "status",
  channel: "channel",
  model: "model",
  size: "size",
  latency: "latency",
  cost: "cost",
  file: "file",
}
const keys = Object.keys(headers) as Array<keyof Row>

const lineOf = (row: Row, widths: ReadonlyArray<number>): string =>
  keys
    .map((key, index) => row[key].padEnd(widths[index]!))
    .join("  ")
    .trimEnd()

/** Render rows as an aligned plain-text table (one request's result). */
export const table = (rows: ReadonlyArray<Row>): string => {
  const all = [headers, ...rows]
  const widths = keys.map((key) => Math.max(...all.map((row) => row[key].length)))
  return [
    lineOf(headers, widths),
    widths.map((width) => "-".repeat(width)).join("  "),
    ...rows.map((row) => lineOf(row, widths)),
  ].join("\n")
}

/**
 * Rows for a bulk run, printed one by one as requests finish: nothing is kept per request, so memory stays
 * flat however long the run. Column widths are fixed up front from what is known (the longest id and
 * channel name); a longer value pushes its row out rather than holding the others back.
 */
export const streamedTable = (known: { readonly idWidth: number; readonly channelWidth: number }) => {
  const fixed: Record<keyof Row, number> = {
    id: Math.max(headers.id.length, known.idWidth),
    status: 11,
    channel: Math.max(headers.channel.length, known.channelWidth),
    model: 22,
    size: 20,
    latency: 8,
    cost: 7,
    file: 0,
  }
  const widths = keys.map((key) => fixed[key])
  return {
    header: (): string =>
      `${lineOf(headers, widths)}\n${widths.map((width) => "-".repeat(Math.max(width, 4))).join("  ")}`,
    line: (row: Row): string => lineOf(row, widths),
  }
}

/** The JSON line printed for an outcome with `--json` (never image bytes); every line carries `costUsd`. */
export const jsonOf = (outcome: Runner.Outcome): Record<string, unknown> => {
  switch (outcome._tag) {
    case "Done":
      return { ...Request.toJson(outcome.result) }
    case "Skipped":
      return { id: outcome.id, ok: true, skipped: true, file: outcome.file, costUsd: 0 }
    case "Failed": {
      const rescued = Output.rescuedTo(outcome.failure.reason)
      return {
        id: outcome.failure.id,
        ok: false,
        error: {
          _tag: outcome.failure.reason._tag,
          message: outcome.failure.reason.message,
          retryable: (outcome.failure.reason as { retryable?: boolean }).retryable ?? false,
          // An image paid for but not written where it belonged: where its bytes were kept.
          ...(rescued === undefined ? {} : { rescuedTo: rescued }),
        },
        costUsd: costOf(outcome),
        attempts: outcome.failure.attempts,
      }
    }
  }
}

/** A one-line progress bar on stderr, redrawn in place; only when stderr is a terminal. */
export const makeProgress = (total: number | undefined) => {
  const enabled = process.stderr.isTTY === true
  let done = 0
  let failed = 0
  let skipped = 0
  let spent = 0
  const draw = () => {
    if (!enabled) return
    const width = 30
    const filled = total === undefined || total === 0 ? 0 : Math.round((width * (done + failed + skipped)) / total)
    const bar = `${"#".repeat(filled)}${"-".repeat(width - filled)}`
    process.stderr.write(
      `\r[${bar}] ${done + failed + skipped}/${total ?? "?"}  ok ${done}  failed ${failed}  skipped ${skipped}  ${money(spent)}`,
    )
  }
  return {
    update: (outcome: Runner.Outcome) => {
      if (outcome._tag === "Done") done += 1
      else if (outcome._tag === "Skipped") skipped += 1
      else failed += 1
      spent += costOf(outcome)
      draw()
    },
    /** Clear the bar before printing a row, so rows and bar do not interleave on one terminal. */
    clear: () => {
      if (enabled) process.stderr.write("\r\x1b[K")
    },
    finish: () => {
      if (enabled) process.stderr.write("\n")
    },
    counts: () => ({ done, failed, skipped, spent }),
  }
}
