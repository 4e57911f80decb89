/**
 * The same channel written with Promises (`definePromisePlugin`, no Effect) passes the same conformance
 * suite as the Effect-style plugin and Peel's own channels.
 */
import { conformance } from "@peel/testkit"
import { expect } from "vitest"
import plugin from "../src/promise.ts"

const secret = "sk-example-SECRET-4242"

conformance({
  plugin,
  route: "proxy-chat",
  config: (simulatorUrl) => ({ apiKey: secret, baseUrl: `${simulatorUrl}/v1` }),
  secret,
  claims: { models: ["gemini-3-pro-image", "gemini-3-pro-image-preview", "gemini-2.5-flash-image"] },
  unsupported: [{ size: "2K" }, { size: "4K", aspectRatio: "16:9" }, { aspectRatio: "9:16" }, { model: "imagen-4" }],
  assertBody: (recorded, request) => {
    expect(recorded.path).toBe("/v1/chat/completions")
    expect(recorded.headers.authorization).toBe(`Bearer ${secret}`)
    expect(recorded.body).toEqual({
      model: request.model,
      messages: [{ role: "user", content: request.prompt }],
      stream: false,
    })
  },
})
