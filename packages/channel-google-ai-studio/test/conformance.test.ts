/**
 * The shared conformance suite against the simulator: the Gemini API route with the key in
 * `x-goog-api-key`, and a proxy's Gemini-native route with `auth: bearer`.
 */
import { Catalog } from "@peel/core"
import { conformance } from "@peel/testkit"
import { expect } from "vitest"
import plugin from "../src/index.ts"

const secret = "AIza-test-SECRET-studio-1"

const bodyCarries = (body: unknown, request: { model: string; size: string; aspectRatio: string; prompt: string }) => {
  expect(body).toMatchObject({
    contents: [{ parts: [{ text: request.prompt }] }],
    generationConfig: { responseModalities: ["TEXT", "IMAGE"], imageConfig: { aspectRatio: request.aspectRatio } },
  })
  const imageConfig = (body as { generationConfig: { imageConfig: { imageSize?: string } } }).generationConfig
    .imageConfig
  if (Catalog.findModel(request.model)?.acceptsImageSize === true) expect(imageConfig.imageSize).toBe(request.size)
  else expect(imageConfig.imageSize).toBeUndefined()
}

conformance({
  plugin,
  route: "gemini",
  config: (url) => ({ apiKey: secret, baseUrl: url }),
  secret,
  claims: {
    models: ["gemini-3-pro-image", "gemini-2.5-flash-image"],
    sizes: ["1K", "2K", "4K"],
    aspectRatios: ["1:1", "16:9", "9:16", "21:9", "3:4"],
  },
  unsupported: [{ model: "imagen-4" }],
  assertBody: (recorded, request) => {
    expect(recorded.path).toBe(`/v1/models/${request.model}:generateContent`)
    expect(recorded.headers["x-goog-api-key"]).toBe(secret)
    expect(recorded.headers.authorization).toBeUndefined()
    expect((recorded.query as Record<string, string>).key).toBeUndefined()
    bodyCarries(recorded.body, request)
  },
})

conformance({
  plugin,
  title: "conformance: google-ai-studio with auth: bearer on a proxy's Gemini-native route",
  route: "proxy-gemini",
  config: (url) => ({ apiKey: secret, baseUrl: url, auth: "bearer", apiVersion: "v1beta", price: 0.05 }),
  secret,
  claims: { models: ["gemini-3-pro-image"], sizes: ["1K", "4K"], aspectRatios: ["1:1", "16:9"] },
  assertBody: (recorded, request) => {
    expect(recorded.path).toBe(`/v1beta/models/${request.model}:generateContent`)
    expect(recorded.headers.authorization).toBe(`Bearer ${secret}`)
    expect(recorded.headers["x-goog-api-key"]).toBeUndefined()
    bodyCarries(recorded.body, request)
  },
})
