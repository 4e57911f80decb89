// The same job with the Effect API: the runner lives in a Scope, so its channels close with it, and
// failures stay typed (RunFailure, whose `reason` is the channel error: RateLimited, Unavailable, ...).
// Run from the repository root: GEMINI_API_KEY=... node examples/embedding/effect.ts
import { Pipeline, Runner } from "@peel/core"
import { Console, Effect } from "effect"

const program = Effect.gen(function* () {
  const pipeline = yield* Pipeline.load("pipelines/google-direct.yaml")
  const runner = yield* Runner.make(pipeline, { outDir: "./out" })
  const result = yield* runner.run({ prompt: "a lighthouse at night", use: "hero", aspectRatio: "21:9" })
  yield* Console.log(
    `${result.file}: ${result.width}x${result.height} ${result.model} via ${result.channel}, $${result.costUsd}`,
  )
})

Effect.runPromise(Effect.scoped(program)).catch((error: unknown) => {
  console.error(String(error))
  process.exitCode = 1
})
