/**
 * `peel stats`: a {@link Summary} as plain text for the terminal, and reading call-log files.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { Money } from "@peel/core"
import { type CallLogLine, parse } from "./CallLog.ts"
import type { Summary } from "./Summary.ts"

/**
 * Read call-log files (a log and its rotated parts, in any order): every line decoded, problems as
 * `FILE:LINE: ...`. A file that cannot be read is a problem too.
 *
 * @category reading
 */
export const read = (
  paths: ReadonlyArray<string>,
): {
  readonly lines: ReadonlyArray<CallLogLine>
  readonly problems: ReadonlyArray<string>
  readonly unreadable: ReadonlyArray<string>
} => {
  const lines: Array<CallLogLine> = []
  const problems: Array<string> = []
  const unreadable: Array<string> = []
  for (const path of paths) {
    let text: string
    try {
      text = readFileSync(path, "utf8")
    } catch (error) {
      const code = (error as { code?: string }).code
      unreadable.push(
        code === "ENOENT"
          ? `${path}: file not found`
          : code === "EISDIR"
            ? `${path}: is a folder, not a call log`
            : `${path}: cannot read it: ${error instanceof Error ? error.message : String(error)}`,
      )
      continue
    }
    const parsed = parse(text, path)
    for (const line of parsed.lines) lines.push(line)
    for (const problem of parsed.problems) problems.push(problem)
  }
  return { lines, problems, unreadable }
}

/** `$0.1340`: core's one money formatter. @category formatting */
export const money = Money.format
/** `12.5%` @category formatting */
export const percent = (value: number): string => `${(value * 100).toFixed(1)}%`
/** `850 ms`, `12.3 s` @category formatting */
export const duration = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`)

const pad = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")
}

const sortedEntries = (record: Readonly<Record<string, number>>) =>
  Object.entries(record).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))

/**
 * The summary as text: totals, per channel, errors, spend, alerts.
 *
 * @category formatting
 */
export const text = (summary: Summary): string => {
  const out: Array<string> = []
  const span =
    summary.from === undefined || summary.to === undefined
      ? "empty"
      : `${new Date(summary.from).toISOString()} → ${new Date(summary.to).toISOString()} (${duration(summary.to - summary.from)})`
  out.push(`runs ${summary.runs.length}; ${span}`)
  out.push("")
  out.push(
    pad([
      ["requests", String(summary.requests.total)],
      ["  ok", String(summary.requests.ok)],
      ["  failed", String(summary.requests.failed)],
      ["  cached", `${summary.requests.cached} (${percent(summary.cacheHitRate)})`],
      ["  placeholders", String(summary.requests.placeholders)],
      ["  hedged / fallback", `${summary.requests.hedged} / ${summary.requests.fallback}`],
      ["  latency p50 / p99", `${duration(summary.requests.latency.p50)} / ${duration(summary.requests.latency.p99)}`],
      ["upstream calls", String(summary.calls)],
      ["  error rate", percent(summary.errorRate)],
      ["billed images", String(summary.billedImages)],
      ["spent", money(summary.spentUsd)],
      ["cost per image", money(summary.costPerImageUsd)],
    ]),
  )
  if (summary.channels.length > 0) {
    out.push("")
    out.push(
      pad([
        ["channel", "calls", "errors", "error rate", "p50", "p99", "billed", "spent"],
        ...summary.channels.map((channel) => [
          channel.channel,
          String(channel.calls),
          String(channel.errors),
          percent(channel.calls === 0 ? 0 : channel.errors / channel.calls),
          duration(channel.latency.p50),
          duration(channel.latency.p99),
          String(channel.billedImages),
          money(channel.spentUsd),
        ]),
      ]),
    )
  }
  const errors = sortedEntries(summary.errorsByTag)
  if (errors.length > 0) {
    out.push("")
    out.push(pad([["error", "calls"], ...errors.map(([tag, count]) => [tag, String(count)])]))
  }
  const failures = sortedEntries(summary.requests.failures)
  if (failures.length > 0) {
    out.push("")
    out.push(pad([["failed requests", "count"], ...failures.map(([tag, count]) => [tag, String(count)])]))
  }
  const models = sortedEntries(summary.spendByModel)
  if (models.length > 0) {
    out.push("")
    out.push(pad([["model", "spent"], ...models.map(([model, value]) => [model, money(value)])]))
  }
  if (summary.alerts.length > 0) {
    out.push("")
    out.push(`alerts (${summary.alerts.filter((alert) => alert.state === "firing").length} fired)`)
    for (const alert of summary.alerts) out.push(`  ${alert.time}  ${alert.state.padEnd(7)}  ${alert.message}`)
  }
  return out.join("\n")
}

/**
 * Per virtual key (`peel stats --by key`): requests, ok, failed, cached, billed images and spend of each key
 * that made requests through the gateway, most spent first.
 *
 * @category formatting
 */
export const keysText = (summary: Summary): string =>
  summary.keys.length === 0
    ? "no requests with a virtual key in these logs (only peel serve writes them)"
    : pad([
        ["key", "requests", "ok", "failed", "cached", "billed", "spent"],
        ...summary.keys.map((key) => [
          key.key,
          String(key.requests),
          String(key.ok),
          String(key.failed),
          String(key.cached),
          String(key.billedImages),
          money(key.spentUsd),
        ]),
      ])
