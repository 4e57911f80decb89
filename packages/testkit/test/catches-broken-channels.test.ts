/**
 * The suite can fail: each check, run directly on a harness, rejects a channel that breaks the rule it
 * guards (internal retries, ignoring interruption, a leaked secret, no refusal, a plain-text secret), and
 * passes the same channel without the flaw.
 */
import { Channel } from "@peel/core"
import { Effect, Schema } from "effect"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import {
  checkEchoedSecret,
  checkError,
  checkInterruption,
  checkRedactedConfig,
  checkRefusal,
  checkSuccess,
  defaultErrors,
  geminiErrors,
  type Harness,
  makeHarness,
  openAiErrors,
  type SimulatorHandle,
  sampleRequest,
  settle,
  startSimulator,
} from "../src/index.ts"
import plugin, { type Flaws } from "./fixtures/fetch-plugin.ts"

const secret = "sk-test-SECRET-456"
const route = "proxy-chat"

let simulator: SimulatorHandle
beforeAll(async () => {
  simulator = await startSimulator()
}, 30_000)
afterAll(async () => {
  await simulator.stop()
}, 30_000)
beforeEach(async () => {
  await settle(simulator.reset())
})

const withHarness = async (flaw: (typeof Flaws)[number] | undefined, use: (harness: Harness) => Promise<void>) => {
  const harness = await makeHarness({
    plugin,
    route,
    config: (url) => ({ apiKey: secret, baseUrl: `${url}/v1`, ...(flaw === undefined ? {} : { flaw }) }),
    secret,
    simulator,
  })
  try {
    await use(harness)
  } finally {
    await harness.close()
  }
}

describe("checks run directly", () => {
  it("pass a channel that keeps the contract", () =>
    withHarness(undefined, async (harness) => {
      await checkSuccess(harness, sampleRequest())
      await checkError(harness, "503", "Unavailable")
      await checkRefusal(harness, sampleRequest({ size: "4K" }))
      await checkInterruption(harness)
    }))

  it("fail a channel that retries internally (more than one upstream call per attempt)", () =>
    withHarness("retries", async (harness) => {
      await expect(checkError(harness, "503", "Unavailable")).rejects.toThrow(/fault 503/)
    }))

  it(
    "fail a channel that does not abort its HTTP request when interrupted",
    () =>
      withHarness("ignores-interruption", async (harness) => {
        await expect(checkInterruption(harness, sampleRequest(), 1_000)).rejects.toThrow(/client go away/)
      }),
    20_000,
  )

  it("fail a channel that puts its key in an error message", () =>
    withHarness("leaks-secret", async (harness) => {
      await expect(checkError(harness, "503", "Unavailable")).rejects.toThrow(/secret appears/)
    }))

  it("fail a channel that quotes an upstream error without removing its key (echo-key, echo-key-200)", () =>
    withHarness("no-redaction", async (harness) => {
      await expect(checkEchoedSecret(harness, "echo-key")).rejects.toThrow(/secret appears/)
      await expect(checkEchoedSecret(harness, "echo-key-200")).rejects.toThrow(/secret appears/)
    }))

  it("pass the same channel on echo-key faults when it redacts", () =>
    withHarness(undefined, async (harness) => {
      await checkEchoedSecret(harness, "echo-key")
      await checkEchoedSecret(harness, "echo-key-200")
    }))

  it("fail a channel whose capabilities claim a request it cannot honour (core would call upstream)", () =>
    withHarness("no-refusal", async (harness) => {
      await expect(checkRefusal(harness, sampleRequest({ size: "2K" }))).rejects.toThrow(/gives no reason/)
    }))

  it("fail a plugin whose config keeps the key as plain text", () => {
    const plain = Channel.definePlugin({
      ...plugin,
      config: Schema.Struct({ apiKey: Schema.String, baseUrl: Schema.String }),
      make: () => Effect.die("not built in this test"),
    })
    expect(() => checkRedactedConfig(plain, { apiKey: secret, baseUrl: "http://x" }, secret)).toThrow(
      /shows the secret/,
    )
    expect(() => checkRedactedConfig(plugin, { apiKey: secret, baseUrl: "http://x" }, secret)).not.toThrow()
  })
})

describe("error maps", () => {
  it("pick the wire family by route", () => {
    for (const gemini of ["gemini", "proxy-gemini", "vertex", "vertex-express"])
      expect(defaultErrors(gemini)).toBe(geminiErrors)
    for (const openAi of ["openrouter", "proxy-chat"]) expect(defaultErrors(openAi)).toBe(openAiErrors)
    expect(geminiErrors["429-daily"]).toEqual({ tag: "RateLimited", daily: true })
  })
})
