#!/usr/bin/env node
/**
 * Entry point of the `peel` command. Handlers set the exit code (0, 1 or 2); a failure that reaches
 * the top (a usage error the parser rejected) exits 2. SIGINT and SIGTERM go through `signals.ts`: a
 * command that drains (`peel run`) takes the first one and exits 130 or 143 when it has finished; otherwise,
 * and on a second signal, the program is interrupted at once (in-flight HTTP requests aborted, channels
 * closed) and exits 130 (SIGINT) or 143 (SIGTERM).
 *
 * A bulk run (`--input FILE`) sizes its heap (`nodeFlags.ts`): before anything is loaded the process
 * replaces itself (same pid, `process.execve`) with a node started with those flags, unless they, or heap
 * flags of the user's own, are already given (`PEEL_NODE_FLAGS=0` turns this off). Other commands start
 * as they are: the flags cost start-up time that only a long run wins back.
 *
 * @since 0.1.0
 */
import type * as EffectModule from "effect"
import { withNodeFlags } from "./nodeFlags.ts"
import type * as SignalsModule from "./signals.ts"

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
