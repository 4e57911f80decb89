/**
 * `peel report`: one self-contained HTML file from a {@link Summary} — no scripts, no fonts, no network
 * fetches; every chart is inline SVG. Charts: latency p50/p99 over time per channel, error rate by type
 * over time (alerts marked), cost per image over time, cache hit rate over time, spend by channel and by
 * model; then the alerts and a summary table per channel.
 *
 * Every chart is an `<svg data-chart="NAME">` whose data points carry `class="pt"` (a test counts them).
 *
 * @since 0.1.0
 */
import { duration, money, percent } from "./Stats.ts"
import type { Summary } from "./Summary.ts"

const palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563"]

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

interface Point {
  readonly x: number
  readonly y: number
}
interface Series {
  readonly name: string
  readonly color: string
  readonly dashed?: boolean
  readonly points: ReadonlyArray<Point>
}

const width = 560
const height = 240
const margin = { left: 64, right: 16, top: 16, bottom: 40 }

const clock = (ms: number, span: number) => {
  const iso = new Date(ms).toISOString()
  return span > 86_400_000
    ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}`
    : span > 120_000
      ? iso.slice(11, 16)
      : iso.slice(11, 19)
}

const niceMax = (value: number): number => {
  if (value <= 0) return 1
  const power = 10 ** Math.floor(Math.log10(value))
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power
  return 10 * power
}

/** A line chart over time; `bands` shade spans (alerts firing). */
const lineChart = (options: {
  readonly name: string
  readonly series: ReadonlyArray<Series>
  readonly from: number
  readonly to: number
  readonly format: (value: number) => string
  readonly bands?: ReadonlyArray<{ readonly from: number; readonly to: number; readonly label: string }>
  readonly yMax?: number
}): string => {
  const plotW = width - margin.left - margin.right
  const plotH = height - margin.top - margin.bottom
  const span = Math.max(1, options.to - options.from)
  const top = options.yMax ?? niceMax(Math.max(0, ...options.series.flatMap((s) => s.points.map((p) => p.y))))
  const x = (value: number) => margin.left + ((value - options.from) / span) * plotW
  const y = (value: number) => margin.top + plotH - (Math.min(value, top) / top) * plotH
  const parts: Array<string> = []
  for (const band of options.bands ?? []) {
    const left = x(Math.max(options.from, band.from))
    const right = x(Math.min(options.to, band.to))
    parts.push(
      `<rect class="band" x="${left.toFixed(1)}" y="${margin.top}" width="${Math.max(2, right - left).toFixed(1)}" height="${plotH}" fill="#fee2e2"><title>${escapeHtml(band.label)}</title></rect>`,
    )
  }
  for (let tick = 0; tick <= 4; tick++) {
    const value = (top * tick) / 4
    parts.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${y(value).toFixed(1)}" y2="${y(value).toFixed(1)}" stroke="#e5e7eb"/>`,
      `<text x="${margin.left - 6}" y="${(y(value) + 4).toFixed(1)}" text-anchor="end" class="tick">${escapeHtml(options.format(value))}</text>`,
    )
  }
  for (let tick = 0; tick <= 4; tick++) {
    const value = options.from + (span * tick) / 4
    parts.push(
      `<text x="${x(value).toFixed(1)}" y="${height - margin.bottom + 16}" text-anchor="${tick === 0 ? "start" : tick === 4 ? "end" : "middle"}" class="tick">${escapeHtml(clock(value, span))}</text>`,
    )
  }
  parts.push(
    `<line x1="${margin.left}" x2="${width - margin.right}" y1="${margin.top + plotH}" y2="${margin.top + plotH}" stroke="#9ca3af"/>`,
  )
  for (const series of options.series) {
    if (series.points.length > 1)
      parts.push(
        `<polyline fill="none" stroke="${series.color}" stroke-width="2"${series.dashed === true ? ' stroke-dasharray="5 4"' : ""} points="${series.points.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" ")}"/>`,
      )
    for (const point of series.points)
      parts.push(
        `<circle class="pt" cx="${x(point.x).toFixed(1)}" cy="${y(point.y).toFixed(1)}" r="${series.points.length > 60 ? 2 : 3}" fill="${series.color}"><title>${escapeHtml(`${series.name} ${clock(point.x, span)}: ${options.format(point.y)}`)}</title></circle>`,
      )
  }
  const legend = options.series
    .map(
      (series) =>
        `<span class="key"><svg width="18" height="8"><line x1="0" x2="18" y1="4" y2="4" stroke="${series.color}" stroke-width="2"${series.dashed === true ? ' stroke-dasharray="4 3"' : ""}/></svg>${escapeHtml(series.name)}</span>`,
    )
    .join("")
  return `<svg data-chart="${options.name}" viewBox="0 0 ${width} ${height}" width="100%" role="img">${parts.join("")}</svg><div class="legend">${legend}</div>`
}

/** Horizontal bars, one per entry. */
const barChart = (name: string, entries: ReadonlyArray<readonly [string, number]>, format: (v: number) => string) => {
  const row = 28
  const chartH = Math.max(1, entries.length) * row + 8
  const labelW = 200
  const top = niceMax(Math.max(0, ...entries.map(([, value]) => value)))
  const plotW = width - labelW - 90
  const bars = entries.map(([label, value], index) => {
    const w = Math.max(2, (value / top) * plotW)
    const y = 4 + index * row
    return `<text x="${labelW - 8}" y="${y + 17}" text-anchor="end" class="label">${escapeHtml(label)}</text><rect class="pt" x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${row - 10}" rx="3" fill="${palette[index % palette.length]}"><title>${escapeHtml(`${label}: ${format(value)}`)}</title></rect><text x="${(labelW + w + 6).toFixed(1)}" y="${y + 17}" class="value">${escapeHtml(format(value))}</text>`
  })
  return `<svg data-chart="${name}" viewBox="0 0 ${width} ${chartH}" width="100%" role="img">${bars.join("")}</svg>`
}

const card = (title: string, subtitle: string, body: string) =>
  `<section class="card"><h2>${escapeHtml(title)}</h2><p class="sub">${escapeHtml(subtitle)}</p>${body}</section>`

const tile = (label: string, value: string, note = "") =>
  `<div class="tile"><div class="tl">${escapeHtml(label)}</div><div class="tv">${escapeHtml(value)}</div>${note === "" ? "" : `<div class="tn">${escapeHtml(note)}</div>`}</div>`

const sorted = (record: Readonly<Record<string, number>>) =>
  Object.entries(record).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))

/**
 * Render the report.
 *
 * @category rendering
 */
export const html = (summary: Summary, options: { readonly title?: string; readonly source?: string } = {}): string => {
  const title = options.title ?? "Peel call report"
  const from = summary.from ?? 0
  const to = Math.max(summary.to ?? 0, from + 1)
  const buckets = summary.buckets
  const mid = (bucket: { start: number; end: number }) => Math.min(to, Math.max(from, (bucket.start + bucket.end) / 2))
  const channels = summary.channels.map((channel) => channel.channel)

  const latencySeries: Array<Series> = channels.flatMap((channel, index) => {
    const color = palette[index % palette.length]!
    const withData = buckets.filter((bucket) => bucket.latency[channel] !== undefined)
    return [
      { name: `${channel} p99`, color, points: withData.map((b) => ({ x: mid(b), y: b.latency[channel]!.p99 })) },
      {
        name: `${channel} p50`,
        color,
        dashed: true,
        points: withData.map((b) => ({ x: mid(b), y: b.latency[channel]!.p50 })),
      },
    ]
  })

  const tags = sorted(summary.errorsByTag).map(([tag]) => tag)
  const withCalls = buckets.filter((bucket) => bucket.calls > 0)
  const errorSeries: Array<Series> = [
    {
      name: "all errors",
      color: "#111827",
      points: withCalls.map((b) => ({ x: mid(b), y: Object.values(b.errors).reduce((s, n) => s + n, 0) / b.calls })),
    },
    ...tags.map((tag, index) => ({
      name: tag,
      color: palette[(index + 1) % palette.length]!,
      dashed: true,
      points: withCalls.map((b) => ({ x: mid(b), y: (b.errors[tag] ?? 0) / b.calls })),
    })),
  ]
  const bands: Array<{ from: number; to: number; label: string }> = []
  const open = new Map<string, { at: number; message: string }>()
  for (const alert of summary.alerts) {
    const key = `${alert.alert} ${alert.scope}`
    const at = Date.parse(alert.time)
    if (alert.state === "firing") open.set(key, { at, message: alert.message })
    else {
      const started = open.get(key)
      if (started !== undefined) bands.push({ from: started.at, to: at, label: started.message })
      open.delete(key)
    }
  }
  for (const started of open.values()) bands.push({ from: started.at, to, label: started.message })

  const withImages = buckets.filter((bucket) => bucket.images > 0)
  const costSeries: Array<Series> = [
    {
      name: "cost per image",
      color: palette[2]!,
      points: withImages.map((b) => ({ x: mid(b), y: b.spentUsd / b.images })),
    },
  ]
  const withRequests = buckets.filter((bucket) => bucket.requests > 0)
  const cacheSeries: Array<Series> = [
    {
      name: "cache hit rate",
      color: palette[3]!,
      points: withRequests.map((b) => ({ x: mid(b), y: b.cacheHits / b.requests })),
    },
  ]

  const alertRows =
    summary.alerts.length === 0
      ? `<p class="none">No alert fired.</p>`
      : `<table><thead><tr><th>time</th><th>state</th><th>alert</th><th>scope</th><th>value</th><th>threshold</th><th></th></tr></thead><tbody>${summary.alerts
          .map(
            (alert) =>
              `<tr class="${alert.state}"><td>${escapeHtml(alert.time.replace("T", " ").slice(0, 19))}</td><td>${escapeHtml(alert.state)}</td><td>${escapeHtml(alert.alert)}</td><td>${escapeHtml(alert.scope)}</td><td>${escapeHtml(alert.alert === "latency-p99" ? duration(alert.value) : percent(alert.value))}</td><td>${escapeHtml(alert.alert === "latency-p99" ? duration(alert.threshold) : percent(alert.threshold))}</td><td>${escapeHtml(alert.message)}</td></tr>`,
          )
          .join("")}</tbody></table>`

  const channelRows = summary.channels
    .map(
      (channel) =>
        `<tr><td>${escapeHtml(channel.channel)}</td><td>${channel.calls}</td><td>${channel.errors}</td><td>${percent(channel.calls === 0 ? 0 : channel.errors / channel.calls)}</td><td>${duration(channel.latency.p50)}</td><td>${duration(channel.latency.p99)}</td><td>${channel.billedImages}</td><td>${money(channel.spentUsd)}</td></tr>`,
    )
    .join("")
  const errorRows = sorted(summary.errorsByTag)
    .map(
      ([tag, count]) =>
        `<tr><td>${escapeHtml(tag)}</td><td>${count}</td><td>${percent(count / Math.max(1, summary.calls))}</td></tr>`,
    )
    .join("")

  const span = summary.from === undefined || summary.to === undefined ? 0 : summary.to - summary.from
  const range =
    summary.from === undefined
      ? "no calls"
      : `${new Date(from).toISOString().replace("T", " ").slice(0, 19)} UTC, ${duration(span)}, ${summary.runs.length} run${summary.runs.length === 1 ? "" : "s"}`

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;background:#f3f4f6}
header{padding:20px 28px 8px}h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#6b7280}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;padding:12px 28px}
.tile{background:#fff;border-radius:10px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.06)}.tl{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.04em}.tv{font-size:22px;font-weight:600;margin-top:2px}.tn{color:#6b7280;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px;padding:8px 28px 16px}
.card{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06)}.card h2{margin:0;font-size:15px}.sub{margin:2px 0 8px;color:#6b7280;font-size:12px}
.wide{padding:0 28px 16px}.tick{font-size:11px;fill:#6b7280}.label{font-size:12px;fill:#374151}.value{font-size:12px;fill:#111827}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:#374151;margin-top:4px}.key{display:inline-flex;align-items:center;gap:5px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e5e7eb}th{color:#6b7280;font-weight:500}
tr.firing td:nth-child(2){color:#dc2626;font-weight:600}tr.cleared td:nth-child(2){color:#16a34a}.none{color:#6b7280}
footer{padding:0 28px 24px;color:#9ca3af;font-size:12px}
</style></head><body>
<header><h1>${escapeHtml(title)}</h1><p>${escapeHtml(range)}${options.source === undefined ? "" : ` — ${escapeHtml(options.source)}`}</p></header>
<div class="tiles">
${tile("requests", String(summary.requests.total), `${summary.requests.ok} ok, ${summary.requests.failed} failed`)}
${tile("upstream calls", String(summary.calls), `error rate ${percent(summary.errorRate)}`)}
${tile("billed images", String(summary.billedImages))}
${tile("spent", money(summary.spentUsd))}
${tile("cost per image", money(summary.costPerImageUsd))}
${tile("latency p50 / p99", `${duration(summary.requests.latency.p50)} / ${duration(summary.requests.latency.p99)}`, "whole requests")}
${tile("cache hit rate", percent(summary.cacheHitRate), `${summary.requests.cached} of ${summary.requests.total}`)}
${tile("alerts fired", String(summary.alerts.filter((alert) => alert.state === "firing").length))}
</div>
<div class="grid">
${card("Latency per channel", `p99 solid, p50 dashed; calls ending in each ${duration(summary.bucketMs)}`, lineChart({ name: "latency", series: latencySeries, from, to, format: duration }))}
${card("Error rate by type", `failed calls over calls, per ${duration(summary.bucketMs)}; shaded while an alert fired`, lineChart({ name: "errors", series: errorSeries, from, to, format: percent, bands }))}
${card("Cost per image", `dollars spent (billed failures included) over images made, per ${duration(summary.bucketMs)}`, lineChart({ name: "cost", series: costSeries, from, to, format: (v) => `$${v.toFixed(3)}` }))}
${card("Cache hit rate", `requests answered from the cache, per ${duration(summary.bucketMs)}`, lineChart({ name: "cache", series: cacheSeries, from, to, format: percent, yMax: 1 }))}
${card("Spend by channel", money(summary.spentUsd), barChart("spend-channel", sorted(summary.spendByChannel), money))}
${card("Spend by model", money(summary.spentUsd), barChart("spend-model", sorted(summary.spendByModel), money))}
</div>
<div class="wide">${card("Alerts", "fired and cleared over the sliding window", alertRows)}</div>
<div class="wide">${card("Channels", "every upstream call", `<table><thead><tr><th>channel</th><th>calls</th><th>errors</th><th>error rate</th><th>p50</th><th>p99</th><th>billed</th><th>spent</th></tr></thead><tbody>${channelRows}</tbody></table>`)}</div>
${errorRows === "" ? "" : `<div class="wide">${card("Errors", "failed calls by type", `<table><thead><tr><th>error</th><th>calls</th><th>share of calls</th></tr></thead><tbody>${errorRows}</tbody></table>`)}</div>`}
<footer>Made by peel report from ${summary.runs.length} run(s); self-contained: no scripts, no network.</footer>
</body></html>
`
}
