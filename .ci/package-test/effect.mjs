// (b) The Effect API from installed packages: load, build in a Scope, run, typed failure.
import { Pipeline, Runner } from "@peel/core"
import { Simulator } from "@peel/simulator"
import { Effect, Exit } from "effect"
import { check, envFor } from "./common.mjs"

const sim = await Simulator.start({ port: 0 })
try {
  const program = Effect.scoped(
    Effect.gen(function* () {
      const pipeline = yield* Pipeline.load("pipeline.yaml", { env: envFor(sim.url) })
      const runner = yield* Runner.make(pipeline)
      const result = yield* runner.run({ prompt: "a lighthouse", size: "2K", aspectRatio: "16:9" })
      const failed = yield* Effect.exit(runner.run({ prompt: "   " }))
      return { result, failed }
    }),
  )
  const { result, failed } = await Effect.runPromise(program)
  check(result.width === 2752 && result.height === 1536, `2K 16:9 is 2752x1536, got ${result.width}x${result.height}`)
  check(Exit.isFailure(failed), "an empty prompt fails")
  console.log(`Effect API ok on Node ${process.versions.node}`)
} finally {
  await sim.stop()
}
