/** The shared conformance suite against the simulator's proxy chat route, with the laozhang preset. */
import { conformance } from "@peel/testkit"
import { expect } from "vitest"
import plugin from "../src/index.ts"

const secret = "sk-test-SECRET-laozhang"

conformance({
  plugin,
  route: "proxy-chat",
  config: (url) => ({ preset: "laozhang", apiKey: secret, baseUrl: `${url}/v1` }),
  secret,
  claims: { models: ["gemini-3-pro-image", "gemini-2.5-flash-image"], sizes: ["1K"], aspectRatios: ["1:1"] },
  unsupported: [{ size: "4K" }, { size: "2K" }, { aspectRatio: "16:9" }, { model: "imagen-4" }],
  assertBody: (recorded, request) => {
    expect(recorded.path).toBe("/v1/chat/completions")
    expect(recorded.headers.authorization).toBe(`Bearer ${secret}`)
    expect(recorded.body).toMatchObject({
      model: request.model,
      messages: [{ role: "user", content: request.prompt }],
      modalities: ["image", "text"],
    })
    expect((recorded.body as { image_config?: unknown }).image_config).toBeUndefined()
  },
})
