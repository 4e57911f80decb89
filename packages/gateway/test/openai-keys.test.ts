/**
 * Virtual keys through the OpenAI routes with the official `openai` SDK: each refusal is the SDK's typed
 * error — 401 `AuthenticationError` (unknown key), 403 `PermissionDeniedError` (a model outside the key's
 * list), 429 `RateLimitError` for the key's rpm (`rate_limit_exceeded`, Retry-After within a minute) and
 * for its spent budget (`insufficient_quota`, Retry-After until the window frees, `x-should-retry: false`
 * when that is over a minute) — nothing reaches the upstream for a refusal, and no secret is in any answer.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Estimate, VirtualKeys, VirtualKeysSqlite, WorkJournal } from "@peel/core"
import { Effect, Exit, Scope } from "effect"
import OpenAI from "openai"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { type Harness, startGateway, upstreamKey } from "./harness.ts"

const state = join(mkdtempSync(join(tmpdir(), "peel-openai-keys-")), "state")
let h: Harness
let keys: VirtualKeys.VirtualKeysShape
const scope = Effect.runSync(Scope.make())
const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.runPromise(effect.pipe(Scope.provide(scope)))

beforeAll(async () => {
  h = await startGateway({ gateway: { stateDir: state, keys: { mode: "required" } } })
  keys = await run(VirtualKeysSqlite.make(WorkJournal.fileIn(state)))
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await h?.close()
})
beforeEach(() => h.sim.reset())

const create = (name: string, limits: VirtualKeys.Limits) => run(VirtualKeys.create(keys, name, limits))
const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${h.url}/v1`, maxRetries: 0 })
const generate = (apiKey: string, prompt: string, model = "gemini-3-pro-image") =>
  client(apiKey).images.generate({ model, prompt, quality: "low" })
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  )

/** What a 1K gemini-3-pro-image request is expected to cost: what the key reserves for it. */
const expectedPrice = async (prompt: string) => {
  const [planned] = await Effect.runPromise(
    h.gateway.runner.prepare({ prompt, id: "estimate", model: "gemini-3-pro-image", size: "1K" }),
  )
  if (planned === undefined || "_tag" in planned.plan) throw new Error("not planned")
  return Estimate.expectedPrice(planned.plan, h.gateway.runner.channels)!
}

describe("virtual keys through the openai SDK", () => {
  it("401 AuthenticationError for an unknown key, and for the upstream key itself", async () => {
    for (const secret of [VirtualKeys.newSecret(), upstreamKey]) {
      const error = await failure(generate(secret, "who am I"))
      expect(error).toBeInstanceOf(OpenAI.AuthenticationError)
      expect((error as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe("invalid_api_key")
      expect(JSON.stringify((error as InstanceType<typeof OpenAI.AuthenticationError>).error)).not.toContain(
        secret.slice(8),
      )
    }
    expect(h.sim.ledger().totals.calls).toBe(0)
  })

  it("403 PermissionDeniedError for a model outside the key's list; its own model works", async () => {
    const flash = await create("openai-flash-only", { models: ["gemini-3.1-flash-image"] })
    const error = await failure(generate(flash.secret, "not my model"))
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError)
    expect((error as InstanceType<typeof OpenAI.PermissionDeniedError>).type).toBe("permission_error")
    expect(h.sim.ledger().totals.calls).toBe(0)
    const allowed = await client(flash.secret).chat.completions.create({
      model: "gemini-3.1-flash-image",
      messages: [{ role: "user", content: "my model" }],
    })
    expect(allowed.choices).toHaveLength(1)
  })

  it("429 RateLimitError for the key's rpm, with a Retry-After the SDK may honour", async () => {
    const slow = await create("openai-rpm", { rpm: 1 })
    await generate(slow.secret, "the one this minute")
    const error = await failure(generate(slow.secret, "one too many"))
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    const typed = error as InstanceType<typeof OpenAI.RateLimitError>
    expect(typed.code).toBe("rate_limit_exceeded")
    const seconds = Number(typed.headers.get("retry-after"))
    expect(seconds).toBeGreaterThan(0)
    expect(seconds).toBeLessThanOrEqual(60)
    expect(typed.headers.get("x-should-retry")).toBeNull()
    expect(h.sim.ledger().totals.billedImages).toBe(1)
  })

  it("429 RateLimitError (insufficient_quota) for a spent budget; the SDK is told not to retry into it", async () => {
    const estimate = await expectedPrice("budget, first")
    const budgeted = await create("openai-budget", {
      budget: { limitUsd: Math.round(estimate * 1.5 * 1e6) / 1e6, window: "1d" },
    })
    await generate(budgeted.secret, "budget, first")
    const error = await failure(generate(budgeted.secret, "budget, second"))
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    const typed = error as InstanceType<typeof OpenAI.RateLimitError>
    expect(typed.type).toBe("insufficient_quota")
    expect(Number(typed.headers.get("retry-after"))).toBeGreaterThan(60)
    expect(typed.headers.get("x-should-retry")).toBe("false")
    expect(h.sim.ledger().totals.billedImages).toBe(1)
    // with the SDK's default retries it still raises at once: one answer, not three
    const before = h.logs.length
    const again = await failure(
      new OpenAI({ apiKey: budgeted.secret, baseURL: `${h.url}/v1` }).images.generate({
        prompt: "budget, third",
        quality: "low",
      }),
    )
    expect(again).toBeInstanceOf(OpenAI.RateLimitError)
    expect(h.logs.length - before).toBe(1)
  })
})
