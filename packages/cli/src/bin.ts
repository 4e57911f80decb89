#!/usr/bin/env node
/**
 * Entry point of the `peel` command. Handlers set the exit code (0, 1 or 2); a failure that reaches
 * the top (a usage error the parser rejected) exits 2; Ctrl-C interrupts cleanly (in-flight HTTP
 * requests are aborted, channels closed).
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit } from "effect"
import { main } from "./main.ts"
import { ExitCode } from "./output.ts"

// stdout carries results (`--json` lines, tables); anything a library prints through console goes to stderr.
for (const level of ["log", "info", "debug", "warn"] as const) {
  console[level] = (...values: Array<unknown>) => {
    process.stderr.write(`${values.map((value) => (typeof value === "string" ? value : String(value))).join(" ")}\n`)
  }
}

main.pipe(
  Effect.scoped,
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit)) return onExit(typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok)
      if (Cause.hasInterruptsOnly(exit.cause)) return onExit(130)
      const rendered = Cause.pretty(exit.cause)
      // Parse errors were already printed by effect/cli; anything else is shown once, without a stack.
      if (!rendered.includes("CliError") && !rendered.includes("ShowHelp"))
        process.stderr.write(`${rendered.split("\n")[0]}\n`)
      return onExit(ExitCode.usage)
    },
  }),
)
