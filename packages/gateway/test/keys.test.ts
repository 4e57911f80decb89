/**
 * Virtual keys through a real gateway in front of the simulator, with the official `@google/genai` SDK as
 * the client and the keys in a real state folder (SQLite), created and revoked through a second connection
 * to it — what `peel keys` does while `peel serve` runs:
 * - a key's budget holds under 20 concurrent requests (the upstream bills ≤ the budget);
 * - a key's rpm; two keys' budgets and rpm independent;
 * - 403 for a model outside the key's list, 401 for unknown and revoked keys (revoked while running), each
 *   as the SDK's typed error, with Retry-After on the 429s, and no upstream call for any refusal;
 * - the admin API: create, list, revoke over HTTP behind the admin key;
 * - no secret in any answer or access-log line; the runner's observers see each request's key name.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ApiError, GoogleGenAI } from "@google/genai"
import {
  Estimate,
  KeySpend,
  type Runner,
  type SpendLedger,
  SpendLedgerSqlite,
  VirtualKeys,
  VirtualKeysSqlite,
  WorkJournal,
} from "@peel/core"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Harness, startGateway, upstreamKey } from "./harness.ts"

const adminKey = "admin-key-for-tests-7c1d0e"
const state = join(mkdtempSync(join(tmpdir(), "peel-gateway-keys-")), "state")
const seenKeys: Array<string | undefined> = []
const observer: Runner.Observer = {
  done: (plan) => {
    seenKeys.push(VirtualKeys.nameInMetadata(plan?.request.metadata))
  },
}

let h: Harness
/** A second connection to the state folder's stores, as `peel keys` would open. */
let keys: VirtualKeys.VirtualKeysShape
let ledger: SpendLedger.SpendLedgerShape
const scope = Effect.runSync(Scope.make())
const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.runPromise(effect.pipe(Scope.provide(scope)))

beforeAll(async () => {
  h = await startGateway({
    gateway: { stateDir: state, keys: { mode: "required", adminKey }, observers: [observer] },
  })
  keys = await run(VirtualKeysSqlite.make(WorkJournal.fileIn(state)))
  ledger = await run(SpendLedgerSqlite.make(WorkJournal.fileIn(state)))
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await h?.close()
})

const create = (name: string, limits: VirtualKeys.Limits) => run(VirtualKeys.create(keys, name, limits))

const generate = (apiKey: string, prompt: string, model = "gemini-3-pro-image") =>
  new GoogleGenAI({ apiKey, httpOptions: { baseUrl: h.url } }).models.generateContent({
    model,
    contents: prompt,
    config: { responseModalities: ["TEXT", "IMAGE"] },
  })

/** The status of the SDK's typed error, or 200. */
const statusOf = async (call: Promise<unknown>): Promise<number> => {
  try {
    await call
    return 200
  } catch (error) {
    if (error instanceof ApiError) return error.status
    throw error
  }
}

/** What the plan of a 1K gemini-3-pro-image request is expected to cost: what the gateway reserves. */
const expectedPrice = async (prompt: string) => {
  const [planned] = await Effect.runPromise(
    h.gateway.runner.prepare({ prompt, id: "estimate", model: "gemini-3-pro-image" }),
  )
  if (planned === undefined || "_tag" in planned.plan) throw new Error("not planned")
  return Estimate.expectedPrice(planned.plan, h.gateway.runner.channels)!
}

describe("virtual keys through @google/genai", () => {
  it("a key's budget holds under 20 concurrent requests: the upstream bills no more than the budget", async () => {
    const estimate = await expectedPrice("budget test prompt 10")
    const limitUsd = Math.round(estimate * 5.5 * 1e6) / 1e6
    const { record, secret } = await create("budgeted", { budget: { limitUsd, window: "1d" } })
    h.sim.reset()
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, index) => statusOf(generate(secret, `budget test prompt ${10 + index}`))),
    )
    const ok = statuses.filter((status) => status === 200).length
    expect(ok).toBe(5)
    expect(statuses.filter((status) => status === 429)).toHaveLength(15)
    const billed = h.sim.ledger().totals
    expect(billed.billedImages).toBe(5)
    expect(billed.billedUsd).toBeLessThanOrEqual(limitUsd)
    const status = await run(KeySpend.account(ledger, record).status)
    expect(status.reservedUsd).toBe(0)
    expect(status.spentUsd).toBeCloseTo(billed.billedUsd, 5)
    expect(status.spentUsd).toBeLessThanOrEqual(limitUsd)
    // the 429 says when to come back, in the header and in Google's RetryInfo
    const answer = await fetch(`${h.url}/v1beta/models/gemini-3-pro-image:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-goog-api-key": secret },
      body: JSON.stringify({ contents: [{ parts: [{ text: "one more" }] }] }),
    })
    expect(answer.status).toBe(429)
    expect(Number(answer.headers.get("retry-after"))).toBeGreaterThan(0)
    const body = (await answer.json()) as { error: { status: string; message: string; details: Array<unknown> } }
    expect(body.error.status).toBe("RESOURCE_EXHAUSTED")
    expect(JSON.stringify(body.error.details)).toContain("KEY_BUDGET_EXHAUSTED")
    expect(JSON.stringify(body)).not.toContain(secret.slice(5))
  })

  it("two keys' rpm and budgets are independent", async () => {
    const a = await create("rpm-a", { rpm: 2 })
    const estimate = await expectedPrice("independent b 1")
    const b = await create("rpm-b", {
      rpm: 4,
      budget: { limitUsd: Math.round(estimate * 3.5 * 1e6) / 1e6, window: "1d" },
    })
    h.sim.reset()
    const inTurn = async (secret: string, prompts: ReadonlyArray<string>) => {
      const statuses: Array<number> = []
      for (const prompt of prompts) statuses.push(await statusOf(generate(secret, prompt)))
      return statuses
    }
    // a: 2 per minute; b: 4 per minute, but a budget for 3
    expect(await inTurn(a.secret, ["independent a 1", "independent a 2", "independent a 3"])).toEqual([200, 200, 429])
    expect(
      await inTurn(b.secret, ["independent b 1", "independent b 2", "independent b 3", "independent b 4"]),
    ).toEqual([200, 200, 200, 429])
    // b's refusal was its budget, a's its rate: a third key is untouched by both
    const c = await create("rpm-c", { rpm: 1 })
    expect(await inTurn(c.secret, ["independent c 1"])).toEqual([200])
    expect(h.sim.ledger().totals.billedImages).toBe(6)
    const rateLimited = await fetch(`${h.url}/v1beta/models/gemini-3-pro-image:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${a.secret}` },
      body: JSON.stringify({ contents: [{ parts: [{ text: "again" }] }] }),
    })
    expect(rateLimited.status).toBe(429)
    const seconds = Number(rateLimited.headers.get("retry-after"))
    expect(seconds).toBeGreaterThan(0)
    expect(seconds).toBeLessThanOrEqual(60)
    expect(JSON.stringify(await rateLimited.json())).toContain("KEY_RATE_LIMITED")
  })

  it("403 for a model outside the key's list, 401 unknown and revoked (revoked while running); nothing reaches the upstream", async () => {
    const flash = await create("flash-only", { models: ["gemini-3.1-flash-image"] })
    h.sim.reset()
    expect(await statusOf(generate(flash.secret, "allowed", "gemini-3.1-flash-image"))).toBe(200)
    expect(await statusOf(generate(flash.secret, "not allowed", "gemini-3-pro-image"))).toBe(403)
    expect(await statusOf(generate(flash.secret, "routed", "auto"))).toBe(403)
    expect(await statusOf(generate(VirtualKeys.newSecret(), "unknown"))).toBe(401)
    expect(await statusOf(generate(upstreamKey, "the upstream key is no virtual key"))).toBe(401)
    await run(keys.revoke("flash-only"))
    expect(await statusOf(generate(flash.secret, "revoked", "gemini-3.1-flash-image"))).toBe(401)
    expect(h.sim.ledger().totals.billedImages).toBe(1)
    expect(h.sim.requests()).toHaveLength(1)
    try {
      await generate(flash.secret, "revoked", "gemini-3.1-flash-image")
    } catch (error) {
      expect(error).toBeInstanceOf(ApiError)
      expect((error as ApiError).message).toContain("the key is not valid (unknown or revoked)")
      expect((error as ApiError).message).not.toContain(flash.secret.slice(5))
    }
  })

  it("the admin API: create, list, revoke behind the admin key; the created key works at once", async () => {
    const admin = (path: string, init: RequestInit = {}, key: string | null = adminKey) =>
      fetch(`${h.url}${path}`, {
        ...init,
        headers: {
          "content-type": "application/json",
          ...(key === null ? {} : { authorization: `Bearer ${key}` }),
        },
      })
    expect((await admin("/admin/keys", {}, null)).status).toBe(401)
    expect((await admin("/admin/keys", {}, "wrong")).status).toBe(401)
    const made = await admin("/admin/keys", {
      method: "POST",
      body: JSON.stringify({ name: "from-admin", budget: "2/1d", rpm: 10, models: ["nano-banana-pro"] }),
    })
    expect(made.status).toBe(201)
    expect(made.headers.get("cache-control")).toBe("no-store")
    const created = (await made.json()) as { key: string; name: string; prefix: string; status: string; rpm: number }
    expect(created).toMatchObject({
      name: "from-admin",
      status: "active",
      rpm: 10,
      budget: { limitUsd: 2, window: "1d" },
    })
    expect(created.key.slice(0, 12)).toBe(created.prefix)
    expect(await statusOf(generate(created.key, "made by the admin API"))).toBe(200)

    const taken = await admin("/admin/keys", { method: "POST", body: JSON.stringify({ name: "from-admin" }) })
    expect(taken.status).toBe(409)
    for (const bad of [
      { name: "x", rpm: 0 },
      { name: "x", budget: "5" },
      { name: "x", extra: 1 },
      { rpm: 3 },
      "nope",
    ]) {
      const refused = await admin("/admin/keys", { method: "POST", body: JSON.stringify(bad) })
      expect(refused.status).toBe(400)
    }

    const listed = await admin("/admin/keys")
    expect(listed.status).toBe(200)
    const text = await listed.text()
    const views = (JSON.parse(text) as { keys: Array<{ name: string; spentUsd: number; status: string }> }).keys
    expect(views.find((view) => view.name === "from-admin")?.spentUsd).toBeGreaterThan(0)
    expect(views.find((view) => view.name === "flash-only")?.status).toBe("revoked")
    expect(text).not.toContain(created.key.slice(5))
    expect(text).not.toContain("hash")

    const revoked = await admin("/admin/keys/from-admin", { method: "DELETE" })
    expect(revoked.status).toBe(200)
    expect(((await revoked.json()) as { status: string }).status).toBe("revoked")
    expect((await admin("/admin/keys/from-admin", { method: "DELETE" })).status).toBe(404)
    expect(await statusOf(generate(created.key, "revoked by the admin API"))).toBe(401)
  })

  it("no key secret in any access-log line; the runner's observers see each request's key name", async () => {
    const all = (await run(keys.list)).map((record) => record.prefix)
    expect(all.length).toBeGreaterThan(3)
    const log = h.logs.join("")
    expect(log).not.toMatch(/peel_[0-9A-Za-z]{43}/)
    expect(log).not.toContain(upstreamKey)
    expect(log).not.toContain(adminKey)
    const lines = h.logs.map((line) => JSON.parse(line) as { key?: string; status: number })
    expect(lines.filter((line) => line.key === "budgeted" && line.status === 429)).toHaveLength(16)
    expect(seenKeys.filter((key) => key === "budgeted")).toHaveLength(5)
    expect(seenKeys).toContain("rpm-c")
    expect(seenKeys).not.toContain(undefined)
  })
})

describe("/readyz with virtual keys", () => {
  it("checks that the key store answers", async () => {
    const ready = await fetch(`${h.url}/readyz`)
    expect(ready.status).toBe(200)
    expect(((await ready.json()) as { checks: Record<string, boolean> }).checks.keys).toBe(true)
  })
})

describe("a gateway without an admin key", () => {
  it("has no /admin routes", async () => {
    const open = await startGateway({
      gateway: { stateDir: join(mkdtempSync(join(tmpdir(), "peel-gateway-keys-")), "state"), keys: {} },
    })
    try {
      const answer = await fetch(`${open.url}/admin/keys`, { headers: { authorization: `Bearer ${adminKey}` } })
      expect(answer.status).toBe(404)
      // auto mode with an empty store: open, any client key works
      expect(
        await statusOf(
          new GoogleGenAI({ apiKey: "anything", httpOptions: { baseUrl: open.url } }).models.generateContent({
            model: "gemini-3-pro-image",
            contents: "open gateway",
          }),
        ),
      ).toBe(200)
    } finally {
      await open.close()
    }
  })
})
