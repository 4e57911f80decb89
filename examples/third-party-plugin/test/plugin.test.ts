/**
 * The example plugin's own pieces: Retry-After parsing, status classification, and loading it from a
 * pipeline both by relative path and by package name.
 */
import { join } from "node:path"
import { Pipeline } from "@peel/core"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import plugin from "../src/index.ts"
import { fromStatus, retryAfterMillis } from "../src/internal/errors.ts"

describe("internal/errors", () => {
  it("reads Retry-After seconds and ignores dates and absurd values", () => {
    expect(retryAfterMillis("34")).toBe(34_000)
    expect(retryAfterMillis("0.5")).toBe(500)
    expect(retryAfterMillis("Wed, 21 Oct 2026 07:28:00 GMT")).toBeUndefined()
    expect(retryAfterMillis("999999")).toBeUndefined()
    expect(retryAfterMillis(undefined)).toBeUndefined()
  })

  it("maps statuses to the taxonomy", () => {
    const tagOf = (status: number) => fromStatus({ channel: "c", status, detail: "d" })._tag
    expect([400, 401, 402, 403, 408, 429, 500, 502, 503].map(tagOf)).toEqual([
      "Rejected",
      "Unauthorized",
      "InsufficientCredits",
      "Unauthorized",
      "Timeout",
      "RateLimited",
      "Unavailable",
      "Unavailable",
      "Unavailable",
    ])
  })
})

describe("loading from a pipeline", () => {
  for (const file of ["by-path.yaml", "by-name.yaml"]) {
    it(`loads the plugin (${file})`, async () => {
      const pipeline = await Effect.runPromise(
        Pipeline.load(join(import.meta.dirname, "fixtures", file), {
          env: { EXAMPLE_API_KEY: "sk-example", EXAMPLE_BASE_URL: "http://127.0.0.1:9/v1" },
        }),
      )
      expect(pipeline.channels.map((channel) => channel.plugin.name)).toEqual([plugin.name])
    })
  }
})
