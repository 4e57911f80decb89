// (a) The Promise API from installed packages: reference images, n, abort, typed errors.
import { writeFileSync } from "node:fs"
import { createRunner } from "@peel/core"
import { Simulator } from "@peel/simulator"
import { check, envFor, png } from "./common.mjs"

const sim = await Simulator.start({ port: 0 })
writeFileSync("reference.png", png)
const runner = await createRunner("pipeline.yaml", {
  env: envFor(sim.url),
  outDir: `out-promise-${process.versions.node}`,
})
try {
  const result = await runner.generate({ prompt: "a red fox in the snow", images: ["reference.png"], seed: 1 })
  check(
    result.channel === "google" && result.width === 1024,
    `image from google at 1K, got ${result.channel} ${result.width}`,
  )
  check(sim.ledger().calls.at(-1)?.referenceImages === 1, "the simulator received one reference image")
  const ids = []
  for await (const outcome of runner.generateAll([{ id: "pair", prompt: "an owl", n: 2, priority: "low" }]))
    ids.push(outcome._tag === "Done" ? `${outcome.result.id}:${outcome.result.model}` : outcome._tag)
  check(ids.sort().join(",") === "pair-1:gemini-3.1-flash-image,pair-2:gemini-3.1-flash-image", `generateAll: ${ids}`)
  const invalid = await runner.generate({ prompt: "x", images: ["missing.png"] }).catch((error) => error)
  check(invalid._tag === "RunFailure" && invalid.reason._tag === "InvalidRequest", `typed error, got ${invalid}`)
  sim.script("*", ["hang"])
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 100)
  const aborted = await runner.generate({ prompt: "never" }, { signal: controller.signal }).catch((error) => error)
  check(aborted?.name === "AbortError", `abort rejects with AbortError, got ${aborted}`)
  console.log(`promise API ok on Node ${process.versions.node}`)
} finally {
  await runner.close()
  await sim.stop()
}
