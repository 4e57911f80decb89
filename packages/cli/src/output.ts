/**
 * Printing: problems to stderr as `FILE:LINE:COL: message`, results as JSON lines or a table, and a
 * progress bar on stderr when it is a terminal.
 *
 * @since 0.1.0
 */
import { type Errors, Request, type Runner } from "@peel/core"

/** Exit codes (DESIGN §7): 0 success, 1 some requests failed, 2 usage or configuration error. */
export const ExitCode = { ok: 0, failed: 1, usage: 2 } as const

export const printProblems = (problems: ReadonlyArray<Errors.ConfigProblem>): void => {
  for (const problem of problems) process.stderr.write(`${problem.format()}\n`)
}

const money = (usd: number): string => `$${usd.toFixed(4)}`

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
        cost: money(0),
        file: "",
      }
  }
}

/** Render rows as an aligned plain-text table. */
export const table = (rows: ReadonlyArray<Row>): string => {
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
  const all = [headers, ...rows]
  const widths = keys.map((key) => Math.max(...all.map((row) => row[key].length)))
  const line = (row: Row) =>
    keys
      .map((key, index) => row[key].padEnd(widths[index]!))
      .join("  ")
      .trimEnd()
  return [line(headers), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n")
}

/** The JSON line printed for an outcome with `--json` (never image bytes). */
export const jsonOf = (outcome: Runner.Outcome): Record<string, unknown> => {
  switch (outcome._tag) {
    case "Done":
      return { ...Request.toJson(outcome.result) }
    case "Skipped":
      return { id: outcome.id, ok: true, skipped: true, file: outcome.file }
    case "Failed":
      return {
        id: outcome.failure.id,
        ok: false,
        error: {
          _tag: outcome.failure.reason._tag,
          message: outcome.failure.reason.message,
          retryable: (outcome.failure.reason as { retryable?: boolean }).retryable ?? false,
        },
        attempts: outcome.failure.attempts,
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
      if (outcome._tag === "Done") {
        done += 1
        spent += outcome.result.costUsd
      } else if (outcome._tag === "Failed") failed += 1
      else skipped += 1
      draw()
    },
    finish: () => {
      if (enabled) process.stderr.write("\n")
    },
    counts: () => ({ done, failed, skipped, spent }),
  }
}
