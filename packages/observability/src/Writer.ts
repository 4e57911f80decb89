/**
 * The call log's writer: buffered, kill-safe, rotated by size.
 *
 * - Lines are buffered in memory and written every {@link defaults.flushIntervalMs} (or as soon as
 *   {@link defaults.bufferBytes} are waiting), always as whole lines in a single `write` call, so a process
 *   killed at any moment leaves complete lines behind — except that a SIGKILL landing during a write of
 *   several pages can cut it short (Linux stops between pages for a fatal signal): at most one partial
 *   last line, which the next writer closes off (below) and the parser reports.
 * - Nothing buffered is lost on an orderly shutdown: `close()` (the Scope closing) flushes, and so do
 *   SIGINT, SIGTERM and the process's `exit`.
 * - A file left by a killed process that does not end with a newline gets one before the first new line,
 *   so the next line is never glued to a fragment.
 * - Rotation: before a write would take the file past `maxBytes`, `FILE` becomes `FILE.1` (`FILE.1`
 *   becomes `FILE.2`, ... up to `keep`; the oldest is removed) and a new `FILE` is started. A single
 *   flush is never split across files.
 *
 * @since 0.1.0
 */
import {
  appendFileSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs"
import { dirname } from "node:path"
import { Effect, type Scope } from "effect"
import { type CallLogLine, encode } from "./CallLog.ts"

/** @category defaults */
export const defaults = {
  /** 64 MiB per file. */
  maxBytes: 64 * 1024 * 1024,
  /** Rotated files kept beside the current one. */
  keep: 5,
  flushIntervalMs: 200,
  bufferBytes: 64 * 1024,
} as const

/** @category models */
export interface WriterOptions {
  readonly path: string
  readonly maxBytes?: number
  readonly keep?: number
  readonly flushIntervalMs?: number
  readonly bufferBytes?: number
  /** Flush on SIGINT/SIGTERM and on process exit (default true). */
  readonly handleSignals?: boolean
}

/** @category models */
export interface Writer {
  readonly path: string
  /** Queue one line (written within the flush interval). Never throws; after `close` it appends at once. */
  readonly write: (line: CallLogLine) => void
  /** Write everything queued now, as whole lines. */
  readonly flush: () => void
  /** Flush and close the file; later writes go straight to the file. */
  readonly close: () => void
  /** Lines written to disk so far, and write errors seen (the first one is kept). */
  readonly stats: () => { readonly lines: number; readonly bytes: number; readonly error?: string }
}

const lastByteIsNewline = (fd: number, size: number): boolean => {
  if (size === 0) return true
  const buffer = Buffer.alloc(1)
  readSync(fd, buffer, 0, 1, size - 1)
  return buffer[0] === 0x0a
}

/**
 * Open (append to) a call log, creating its folder if need be. Throws when the file cannot be opened: call
 * it before anything is spent.
 *
 * @category constructors
 */
export const open = (options: WriterOptions): Writer => {
  const path = options.path
  const maxBytes = options.maxBytes ?? defaults.maxBytes
  const keep = Math.max(0, options.keep ?? defaults.keep)
  const bufferBytes = options.bufferBytes ?? defaults.bufferBytes
  mkdirSync(dirname(path), { recursive: true })
  let fd = openSync(path, "a+")
  let size = fstatSync(fd).size
  let pendingNewline = !lastByteIsNewline(fd, size)
  let pending: Array<string> = []
  let pendingBytes = 0
  let lines = 0
  let bytes = 0
  let error: string | undefined
  let closed = false

  const rotate = () => {
    closeSync(fd)
    if (keep === 0) rmSync(path, { force: true })
    else {
      rmSync(`${path}.${keep}`, { force: true })
      for (let index = keep - 1; index >= 1; index--)
        if (existsSync(`${path}.${index}`)) renameSync(`${path}.${index}`, `${path}.${index + 1}`)
      renameSync(path, `${path}.1`)
    }
    fd = openSync(path, "a+")
    size = 0
    pendingNewline = false
  }

  const writeAll = (buffer: Buffer) => {
    let offset = 0
    while (offset < buffer.length) offset += writeSync(fd, buffer, offset, buffer.length - offset)
  }

  const flush = () => {
    if (pending.length === 0) return
    const body = pending.join("")
    const count = pending.length
    pending = []
    pendingBytes = 0
    try {
      const length = Buffer.byteLength(body, "utf8")
      if (size > 0 && size + length > maxBytes) rotate()
      const buffer = Buffer.from(pendingNewline ? `\n${body}` : body, "utf8")
      // One write call for whole lines: a kill leaves all of them or none (a SIGKILL mid-way through a
      // write of several pages may leave a partial last line; the next open closes it off).
      writeAll(buffer)
      pendingNewline = false
      size += buffer.length
      lines += count
      bytes += buffer.length
    } catch (cause) {
      error ??= cause instanceof Error ? cause.message : String(cause)
    }
  }

  const timer = setInterval(flush, options.flushIntervalMs ?? defaults.flushIntervalMs)
  timer.unref()

  const onSignal = (signal: NodeJS.Signals) => {
    flush()
    // Alone on this signal, we would have swallowed Node's default (exit): hand it back.
    if (process.listenerCount(signal) === 1) {
      detach()
      process.kill(process.pid, signal)
    }
  }
  const onExit = () => flush()
  const detach = () => {
    process.removeListener("SIGINT", onSignal)
    process.removeListener("SIGTERM", onSignal)
    process.removeListener("exit", onExit)
  }
  if (options.handleSignals !== false) {
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)
    process.on("exit", onExit)
  }

  return {
    path,
    write: (line) => {
      const text = `${encode(line)}\n`
      if (closed) {
        // A request that ends after close (abandoned at shutdown) still reaches the file, as one whole line.
        try {
          appendFileSync(path, text)
          lines += 1
        } catch (cause) {
          error ??= cause instanceof Error ? cause.message : String(cause)
        }
        return
      }
      pending.push(text)
      pendingBytes += text.length
      if (pendingBytes >= bufferBytes) flush()
    },
    flush,
    close: () => {
      if (closed) return
      closed = true
      clearInterval(timer)
      flush()
      detach()
      try {
        closeSync(fd)
      } catch {
        // already closed
      }
    },
    stats: () => (error === undefined ? { lines, bytes } : { lines, bytes, error }),
  }
}

/**
 * A call log for the lifetime of the current Scope: flushed and closed when the Scope closes.
 *
 * @category constructors
 */
export const scoped = (options: WriterOptions): Effect.Effect<Writer, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => open(options),
      catch: (cause) =>
        new Error(`${options.path}: cannot open the call log: ${cause instanceof Error ? cause.message : cause}`),
    }),
    (writer) => Effect.sync(() => writer.close()),
  )
