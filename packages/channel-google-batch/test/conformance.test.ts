/**
 * The shared checks that apply to a batch-only channel (testkit): the decoded config keeps the key
 * redacted, the price is a finite number, real-time work and unknown models are left out by core with no
 * upstream call — and, through the batch facet, the key never shows in an error, a log line or a result,
 * also when the upstream echoes it back (`echo-key`, `echo-key-200`).
 */
import { Channel, Errors } from "@peel/core"
import {
  attempt,
  checkNoSecret,
  checkPrice,
  checkRedactedConfig,
  checkRefusal,
  echoFaults,
  type Harness,
  makeHarness,
  recordedRequests,
  sampleRequest,
} from "@peel/testkit"
import { Exit } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import plugin from "../src/index.ts"

const secret = "sk-batch-SECRET-31337"
let harness: Harness
beforeAll(async () => {
  harness = await makeHarness({
    plugin,
    route: "gemini-batch",
    config: (url) => ({ apiKey: secret, baseUrl: url }),
    secret,
  })
})
afterAll(() => harness.close())

const expose = (where: string, value: unknown) => {
  harness.exposures.push({ where, text: typeof value === "string" ? value : (JSON.stringify(value) ?? String(value)) })
  harness.exposures.push({ where: `${where} (String)`, text: String(value) })
}

describe("google-batch conformance", () => {
  it("keeps the key redacted in the decoded config", () => {
    checkRedactedConfig(plugin, { apiKey: secret, baseUrl: "http://127.0.0.1:1" }, secret)
  })

  it("states a finite price, half of the standard one", () => {
    checkPrice(harness, sampleRequest())
    expect(harness.channel.capabilities.batch).toBe(true)
  })

  it("is left out of real-time work and of models it does not serve, with no upstream call", async () => {
    await checkRefusal(harness, sampleRequest({ model: "imagen-4" }))
    // Real-time work: the channel could serve the model, but core's plan leaves a batch-only channel out.
    expect(Channel.refusal(harness.channel, sampleRequest())).toBeUndefined()
    const calls = (await recordedRequests(harness)).length
    const exit = await harness.run(attempt(harness.channel, sampleRequest()))
    expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("NoChannel")
    expect((await recordedRequests(harness)).length).toBe(calls)
  })

  for (const fault of echoFaults)
    it(`never shows the key when the upstream echoes it (${fault}) on create, poll and collect`, async () => {
      const batch = harness.channel.batch!
      harness.simulator.script("gemini-batch", [fault])
      const created = await harness.run(batch.submit([sampleRequest()], { displayName: `echo-${fault}` }))
      expose(`submit under ${fault}`, Exit.isFailure(created) ? created.cause : created.value)
      harness.simulator.script("gemini-batch", [fault])
      const polled = await harness.run(batch.poll("batches/unknown"))
      expect(Exit.isFailure(polled)).toBe(true)
      expose(`poll under ${fault}`, polled)
      harness.simulator.script("gemini-batch", [fault])
      const collected = await harness.run(batch.collect("batches/unknown"))
      expose(`collect under ${fault}`, collected)
      checkNoSecret(harness)
    })

  it("every error is a channel error naming this channel", async () => {
    const exit = await harness.run(harness.channel.batch!.poll("batches/does-not-exist"))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) {
      const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")
      const value = (error as { error?: unknown } | undefined)?.error
      expect(Errors.isChannelError(value)).toBe(true)
      expect((value as Errors.ChannelError).channel).toBe("under-test")
    }
  })
})
