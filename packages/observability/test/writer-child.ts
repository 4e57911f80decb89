/** Writes call-log lines as fast as it can until killed (the SIGKILL test's victim). argv: PATH MAXBYTES */
import * as Writer from "../src/Writer.ts"

const writer = Writer.open({ path: process.argv[2]!, maxBytes: Number(process.argv[3]), keep: 3, flushIntervalMs: 2 })
let n = 0
const burst = () => {
  for (let i = 0; i < 200; i++) {
    n += 1
    writer.write({
      type: "attempt",
      time: new Date().toISOString(),
      runId: "kill-test",
      requestId: `req-${n}`,
      promptHash: "0".repeat(64),
      channel: "google",
      model: "gemini-3-pro-image",
      size: "4K",
      outcome: n % 7 === 0 ? "Unavailable" : "ok",
      message: "x".repeat(n % 500),
      startedAt: new Date().toISOString(),
      latencyMs: n,
      costUsd: 0.24,
    })
  }
  if (n === 2000) process.stdout.write("writing\n")
  setImmediate(burst)
}
burst()
