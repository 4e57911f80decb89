/**
 * Live progress on a terminal. One request: a spinner with the elapsed time, the model and size, and the
 * attempt under way (the runner's journal tells of attempts as they end, so "attempt 3 after google:
 * RateLimited 429" is the best it can say). Many: a bar with done / failed / skipped / total, rate, ETA,
 * dollars spent so far and requests made per channel. Nothing at all unless `enabled` (the CLI: stderr is a
 * TTY and no `--json`).
 *
 * The same shape as the CLI's own counter (`update`, `clear`, `finish`, `counts`), plus the runner
 * observer that feeds the attempt line.
 *
 * @since 0.1.0
 */
import { Money, type Runner } from "@peel/core"
import { isCall } from "./Lines.ts"

/** What the bar counts: the CLI's printed outcomes (the runner's, and any of its own). @category models */
export type Counted = { readonly _tag: string }

/** @category models */
export interface ProgressOptions<O extends Counted> {
  /**
   * Requests in a bulk run (or a function that says it each time the bar is drawn, for a run that learns
   * it as it goes); undefined for a single request (spinner).
   */
  readonly total: number | (() => number) | undefined
  readonly enabled: boolean
  /** What an outcome cost. */
  readonly costOf: (outcome: O) => number
  /** The channel that made an outcome's image, if any (per-channel counts). */
  readonly channelOf?: (outcome: O) => string | undefined
  readonly write?: (text: string) => void
  readonly columns?: () => number | undefined
  readonly now?: () => number
  /** Redraw interval (spinner, ETA); 100 ms. */
  readonly intervalMs?: number
}

/** @category models */
export interface Progress<O extends Counted> {
  readonly observer: Runner.Observer
  readonly update: (outcome: O) => void
  /** Clear the line before printing a row, so rows and the bar never interleave. */
  readonly clear: () => void
  /** Stop drawing and end the line. */
  readonly finish: () => void
  readonly counts: () => {
    readonly done: number
    readonly failed: number
    readonly skipped: number
    readonly spent: number
  }
  /** The line as it would be drawn now (tests). */
  readonly render: () => string
}

const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

const clock = (ms: number) => {
  const seconds = Math.max(0, Math.round(ms / 1000))
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  return h > 0
    ? `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`
    : `${m}:${String(s).padStart(2, "0")}`
}

/**
 * A progress display; draws only when `enabled`.
 *
 * @category constructors
 */
export const make = <O extends Counted>(options: ProgressOptions<O>): Progress<O> => {
  const write = options.write ?? ((text: string) => process.stderr.write(text))
  const columns = options.columns ?? (() => process.stderr.columns)
  const now = options.now ?? Date.now
  const started = now()
  let done = 0
  let failed = 0
  let skipped = 0
  let spent = 0
  let frame = 0
  let drawn = false
  let finished = false
  const perChannel = new Map<string, number>()
  let attempts = 0
  let last: { channel: string; outcome: string; status?: number | undefined } | undefined
  let what: string | undefined

  const render = (): string => {
    const elapsed = now() - started
    if (options.total === undefined) {
      const spinner = frames[frame % frames.length]!
      const attempt =
        last === undefined
          ? "first attempt"
          : `attempt ${attempts + 1} after ${last.channel}: ${last.outcome}${last.status === undefined ? "" : ` ${last.status}`}`
      return `${spinner} ${(elapsed / 1000).toFixed(1)}s  ${what === undefined ? "" : `${what}  `}${attempt}`
    }
    const total = typeof options.total === "function" ? options.total() : options.total
    const finishedCount = done + failed + skipped
    const width = 24
    const filled = total === 0 ? width : Math.min(width, Math.round((width * finishedCount) / total))
    const ran = done + failed
    const rate = elapsed > 0 ? (ran * 1000) / elapsed : 0
    const left = total - finishedCount
    const eta = rate > 0 && left > 0 ? `ETA ${clock((left / rate) * 1000)}` : left > 0 ? "ETA --:--" : "done"
    const channels = [...perChannel.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([channel, count]) => `${channel} ${count}`)
      .join(" · ")
    return `[${"█".repeat(filled)}${"░".repeat(width - filled)}] ${finishedCount}/${total}  ok ${done}  failed ${failed}${
      skipped > 0 ? `  skipped ${skipped}` : ""
    }  ${rate.toFixed(1)}/s  ${eta}  ${Money.format(spent)}${channels === "" ? "" : `  ${channels}`}`
  }

  const draw = () => {
    if (!options.enabled || finished) return
    const line = render()
    const limit = columns()
    const shown = limit !== undefined && limit > 10 && line.length >= limit ? `${line.slice(0, limit - 2)}…` : line
    write(`\r\x1b[K${shown}`)
    drawn = true
  }

  const timer = options.enabled
    ? setInterval(() => {
        frame += 1
        draw()
      }, options.intervalMs ?? 100)
    : undefined
  timer?.unref()

  const observer: Runner.Observer = {
    attempt: (request, attempt) => {
      what = `${request.plan.model} ${request.plan.size}`
      if (!isCall(attempt)) return
      attempts += 1
      last = { channel: attempt.channel, outcome: attempt.outcome, status: attempt.status }
    },
  }

  return {
    observer,
    update: (outcome) => {
      if (outcome._tag === "Done") {
        done += 1
        const channel = options.channelOf?.(outcome)
        if (channel !== undefined) perChannel.set(channel, (perChannel.get(channel) ?? 0) + 1)
      } else if (outcome._tag === "Skipped") skipped += 1
      else failed += 1
      spent += options.costOf(outcome)
      draw()
    },
    clear: () => {
      if (options.enabled && drawn) write("\r\x1b[K")
    },
    finish: () => {
      if (finished) return
      if (timer !== undefined) clearInterval(timer)
      if (options.enabled && drawn) write(options.total === undefined ? "\r\x1b[K" : "\n")
      finished = true
    },
    counts: () => ({ done, failed, skipped, spent }),
    render,
  }
}
