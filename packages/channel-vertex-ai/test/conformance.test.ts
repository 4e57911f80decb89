/**
 * The shared conformance suite against the simulator's Vertex routes: project mode with a token source
 * (Bearer) and express mode with an API key.
 */
import { conformance } from "@peel/testkit"
import { expect } from "vitest"
import plugin from "../src/index.ts"

const token = "ya29.test-SECRET-vertex-token"
const key = "AIza-test-SECRET-vertex-express"

const bodyCarries = (body: unknown, request: { size: string; aspectRatio: string; prompt: string }) =>
  expect(body).toMatchObject({
    contents: [{ parts: [{ text: request.prompt }] }],
    generationConfig: {
      responseModalities: ["TEXT", "IMAGE"],
      imageConfig: { aspectRatio: request.aspectRatio, imageSize: request.size },
    },
  })

conformance({
  plugin,
  route: "vertex",
  config: (url) => ({ project: "peel-test", location: "global", accessToken: token, baseUrl: url }),
  secret: token,
  claims: { models: ["gemini-3-pro-image"], sizes: ["1K", "2K", "4K"], aspectRatios: ["1:1", "16:9", "4:5"] },
  unsupported: [{ model: "imagen-4" }],
  assertBody: (recorded, request) => {
    expect(recorded.path).toBe(
      `/v1beta1/projects/peel-test/locations/global/publishers/google/models/${request.model}:generateContent`,
    )
    expect(recorded.headers.authorization).toBe(`Bearer ${token}`)
    bodyCarries(recorded.body, request)
  },
})

conformance({
  plugin,
  title: "conformance: vertex-ai in express mode",
  route: "vertex-express",
  config: (url) => ({ apiKey: key, baseUrl: url, apiVersion: "v1" }),
  secret: key,
  claims: { models: ["gemini-3-pro-image"], sizes: ["2K"], aspectRatios: ["1:1", "9:16"] },
  assertBody: (recorded, request) => {
    expect(recorded.path).toBe(`/v1/publishers/google/models/${request.model}:generateContent`)
    expect(recorded.headers["x-goog-api-key"]).toBe(key)
    bodyCarries(recorded.body, request)
  },
})
