// Make one image from a program that does not use Effect: load a checked-in pipeline, generate, close.
// Ctrl-C aborts the request (its HTTP call too); failures are typed errors to switch on, never a stack trace.
// Run from the repository root: GEMINI_API_KEY=... node examples/embedding/promise.ts
import { createRunner, Runner } from "@peel/core"

const controller = new AbortController()
process.once("SIGINT", () => controller.abort())

const runner = await createRunner("pipelines/google-direct.yaml", { outDir: "./out" }).catch((error: Error) => {
  console.error(error.message) // a ConfigError lists every problem as FILE:LINE:COL: message
  process.exit(2)
})
try {
  const result = await runner.generate(
    { prompt: "a red fox in the snow", use: "blog", aspectRatio: "16:9" },
    { signal: controller.signal },
  )
  console.log(
    `${result.file}: ${result.width}x${result.height} ${result.model} via ${result.channel}, $${result.costUsd}`,
  )
} catch (error) {
  process.exitCode = 1
  if (error instanceof Runner.RunFailure)
    // reason._tag: RateLimited, Unavailable, Timeout, ContentBlocked, InvalidRequest, NoChannel, ...
    console.error(
      `${error.reason._tag} after ${error.attempts.length} attempt(s), $${error.costUsd}: ${error.reason.message}`,
    )
  else if (error instanceof Error && error.name === "AbortError") console.error("cancelled")
  else throw error
} finally {
  await runner.close()
}
