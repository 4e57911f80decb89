// (d) Load both third-party plugins by relative path and run a request through them.
import { createRunner } from "@peel/core"
import { check } from "./common.mjs"

const runner = await createRunner("plugins.yaml")
try {
  const result = await runner.generate({ prompt: "a fox" })
  check(
    result.channel === "promised" && result.costUsd === 0.01,
    `promised channel, got ${result.channel} ${result.costUsd}`,
  )
  console.log(`third-party plugins ok on Node ${process.versions.node}`)
} finally {
  await runner.close()
}
