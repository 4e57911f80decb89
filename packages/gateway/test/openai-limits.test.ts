/**
 * The OpenAI routes' 429s through the `openai` SDK: the pipeline's own budget stage refusing (the
 * operator's cap) is a `RateLimitError` with Retry-After and nothing spent upstream.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Harness, pipelineFile, startGateway } from "./harness.ts"

let h: Harness
beforeAll(async () => {
  // The test pipeline with a budget smaller than one image.
  const pipeline = join(mkdtempSync(join(tmpdir(), "peel-openai-limits-")), "gateway.yaml")
  writeFileSync(
    pipeline,
    readFileSync(pipelineFile, "utf8").replace("stages:\n", "stages:\n  - budget: { limit: 0.01, window: 1d }\n"),
  )
  h = await startGateway({ pipeline })
})
afterAll(async () => {
  await h?.close()
})

const client = () => new OpenAI({ apiKey: "any-client-key", baseURL: `${h.url}/v1`, maxRetries: 0 })

describe("the pipeline's budget", () => {
  it("refuses with RateLimitError (429, insufficient_quota family, Retry-After) before any call", async () => {
    const error = await client()
      .images.generate({ prompt: "an image over the budget", quality: "low" })
      .then(
        () => undefined,
        (caught: unknown) => caught,
      )
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    const typed = error as InstanceType<typeof OpenAI.RateLimitError>
    expect(typed.status).toBe(429)
    expect(typed.type).toBe("insufficient_quota")
    expect(typed.code).toBe("pipeline_budget_exhausted")
    expect(Number(typed.headers.get("retry-after"))).toBeGreaterThan(0)
    expect(h.sim.ledger().totals.calls).toBe(0)
  })
})
