// Make one image from a program that does not use Effect: load a checked-in pipeline, generate, close.
// Run from the repository root: GEMINI_API_KEY=... node examples/embedding/promise.ts
import { createRunner } from "@peel/core"

const runner = await createRunner("pipelines/google-direct.yaml", { outDir: "./out" })
try {
  const result = await runner.generate({ prompt: "a red fox in the snow", use: "blog", aspectRatio: "16:9" })
  console.log(
    `${result.file}: ${result.width}x${result.height} ${result.model} via ${result.channel}, $${result.costUsd}`,
  )
} finally {
  await runner.close()
}
