// (d) A third-party plugin written with Promises (no Effect): a config check and async generate.
import { definePromisePlugin } from "@peel/core"
import { png } from "./common.mjs"

export default definePromisePlugin({
  name: "packaged-promise",
  description: "a channel written with async functions",
  config: (input) => {
    if (typeof input?.price !== "number") throw new Error("price: a number is required")
    return input
  },
  make: async (config) => ({
    capabilities: { models: ["gemini-3-pro-image"] },
    price: () => config.price,
    generate: async () => ({ bytes: new Uint8Array(png), mimeType: "image/png", costUsd: config.price }),
  }),
})
