#!/usr/bin/env node
/**
 * Entry point of the `peel` command. Handlers set the exit code (0, 1 or 2); a failure that reaches
 * the top (a usage error the parser rejected) exits 2. SIGINT and SIGTERM go through `signals.ts`: a
 * command that drains (`peel run`) takes the first one and exits 130 or 143 when it has finished; otherwise,
 * and on a second signal, the program is interrupted at once (in-flight HTTP requests aborted, channels
 * closed) and exits 130 (SIGINT) or 143 (SIGTERM).
 *
 * The process sizes its heap for a long bulk run ({@link nodeFlags}): before anything is loaded it
 * replaces itself (same pid, `process.execve`) with a node started with those flags, unless the flags,
 * or heap flags of the user's own, are already given (`PEEL_NODE_FLAGS=0` turns this off).
 *
 * @since 0.1.0
 */
import type * as EffectModule from "effect"
import type * as SignalsModule from "./signals.ts"

/**
 * V8 flags for the peel process. A bulk run's live heap is small (tens of MB) but it allocates fast (answers,
 * base64 text, images): with V8's defaults the young generation grows to tens of MB and the old one
 * to several times its live size before a full collection, so a 6,000-image run peaked near 400 MB. A
 * small young generation and V8's memory-saving heap growth keep it near the live size; no hard
 * limit is set, so a run that really needs more memory still gets it.
 */
export const nodeFlags: ReadonlyArray<string> = ["--optimize-for-size", "--max-semi-space-size=1"]

const heapFlag = /^--(optimize-for-size|max-semi-space-size|max-old-space-size|max-heap-size)\b/

/** Start again with {@link nodeFlags} when they (or the user's own heap flags) are not in effect. */
const withNodeFlags = (): void => {
  if (process.platform === "win32" || typeof process.execve !== "function" || process.env.PEEL_NODE_FLAGS === "0")
    return
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)]
  if (given.some((flag) => heapFlag.test(flag))) return
  process.execve(
    process.execPath,
    [process.execPath, ...nodeFlags, ...process.execArgv, ...process.argv.slice(1)],
    process.env,
  )
}
withNodeFlags()

// Loaded only now, so a restart above costs no module loading.
const { NodeServices } = await import("@effect/platform-node")
const { Cause, Effect, Exit, Runtime }: typeof EffectModule = await import("effect")
const { main } = await import("./main.ts")
const { ExitCode } = await import("./output.ts")
const Signals = await import("./signals.ts")

// stdout carries results (`--json` lines, tables); anything a library prints through console goes to stderr.
for (const level of ["log", "info", "debug", "warn"] as const) {
  console[level] = (...values: Array<unknown>) => {
    process.stderr.write(`${values.map((value) => (typeof value === "string" ? value : String(value))).join(" ")}\n`)
  }
}

/** Like NodeRuntime.runMain, but the first signal may be taken by a command that stops gracefully. */
const runMain = Runtime.makeRunMain(({ fiber, teardown }) => {
  const onSignal = (signal: SignalsModule.Signal) => {
    const first = Signals.receivedSignal() === undefined
    if (Signals.deliver(signal)) return
    if (!first) process.stderr.write(`peel: ${signal} again: aborting now\n`)
    fiber.interruptUnsafe(fiber.id)
  }
  const onSigint = () => onSignal("SIGINT")
  const onSigterm = () => onSignal("SIGTERM")
  fiber.addObserver((exit) => {
    process.removeListener("SIGINT", onSigint)
    process.removeListener("SIGTERM", onSigterm)
    teardown(exit, (code) => {
      if (Signals.receivedSignal() !== undefined || code !== 0) process.exit(code)
    })
  })
  process.on("SIGINT", onSigint)
  process.on("SIGTERM", onSigterm)
})

main.pipe(
  Effect.scoped,
  Effect.provide(NodeServices.layer),
  runMain({
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit)) return onExit(typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok)
      if (Cause.hasInterruptsOnly(exit.cause)) return onExit(Signals.exitCodeOf(Signals.receivedSignal() ?? "SIGINT"))
      const rendered = Cause.pretty(exit.cause)
      // Parse errors were already printed by effect/cli; anything else is shown once, without a stack.
      if (!rendered.includes("CliError") && !rendered.includes("ShowHelp"))
        process.stderr.write(`${rendered.split("\n")[0]}\n`)
      return onExit(ExitCode.usage)
    },
  }),
)
