/**
 * The conformance suite run on a real (if small) channel: the fetch plugin in `fixtures/`, against the
 * simulator's `proxy-chat` route. Proves the suite passes a channel that keeps the contract.
 */
import { expect } from "vitest"
import { conformance } from "../src/index.ts"
import plugin from "./fixtures/fetch-plugin.ts"

const secret = "sk-test-SECRET-123"

conformance({
  plugin,
  route: "proxy-chat",
  config: (simulatorUrl) => ({ apiKey: secret, baseUrl: `${simulatorUrl}/v1` }),
  secret,
  claims: { models: ["gemini-3-pro-image", "gemini-2.5-flash-image"] },
  unsupported: [{ size: "2K" }, { aspectRatio: "16:9" }, { model: "gemini-3-pro-image-preview" }],
  assertBody: (recorded, request) => {
    expect(recorded.method).toBe("POST")
    expect(recorded.path).toBe("/v1/chat/completions")
    expect(recorded.headers.authorization).toBe(`Bearer ${secret}`)
    expect(recorded.body).toMatchObject({ model: request.model, messages: [{ role: "user", content: request.prompt }] })
  },
})
