/** The shared conformance suite against the simulator's OpenRouter route. */
import { conformance } from "@peel/testkit"
import { expect } from "vitest"
import plugin from "../src/index.ts"

const secret = "sk-or-v1-test-SECRET-openrouter"

conformance({
  plugin,
  route: "openrouter",
  config: (url) => ({ apiKey: secret, baseUrl: `${url}/api/v1` }),
  secret,
  claims: {
    models: ["gemini-3-pro-image", "gemini-2.5-flash-image"],
    sizes: ["1K", "2K", "4K"],
    aspectRatios: ["1:1", "16:9", "21:9", "2:3"],
  },
  unsupported: [{ model: "imagen-4" }],
  assertBody: (recorded, request) => {
    expect(recorded.path).toBe("/api/v1/chat/completions")
    expect(recorded.headers.authorization).toBe(`Bearer ${secret}`)
    expect(recorded.headers["x-stainless-retry-count"]).toBe("0")
    expect(recorded.body).toMatchObject({
      model: `google/${request.model}`,
      messages: [{ role: "user", content: request.prompt }],
      modalities: ["image", "text"],
      image_config: { aspect_ratio: request.aspectRatio, image_size: request.size },
    })
  },
})
