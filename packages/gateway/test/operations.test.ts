/**
 * Server operations with a slow upstream (the simulator takes 2 s per image): a client that disconnects
 * does not waste the paid image (the run finishes, is paid once, lands in the cache, the retry gets it at
 * $0); the drain refuses new work, lets in-flight requests finish and pays each once; /healthz and /readyz.
 */
import { GoogleGenAI } from "@google/genai"
import { Effect, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Events } from "../src/index.ts"
import { type Harness, startGateway } from "./harness.ts"

let h: Harness
const events: Array<Events.GatewayEvent> = []
const listening = Effect.runSync(Scope.make())
beforeAll(async () => {
  h = await startGateway({ simulator: { latency: "2s" } })
  await Effect.runPromise(h.gateway.events.listen((event) => events.push(event)).pipe(Scope.provide(listening)))
})
afterAll(async () => {
  await h?.close()
})

/** Wait until `condition` holds (checked every 10 ms): waiting on an event, not a deadline. */
const until = async (condition: () => boolean): Promise<void> => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10))
}

const client = () => new GoogleGenAI({ apiKey: "k", httpOptions: { baseUrl: h.url } })

describe("a client that disconnects", () => {
  it("does not waste the paid image: the run finishes, is paid once, and the retry gets it from the cache at $0", async () => {
    h.sim.reset()
    const controller = new AbortController()
    const ask = (abortSignal?: AbortSignal) =>
      client().models.generateContent({
        model: "gemini-3-pro-image",
        contents: "a lighthouse keeper who gave up waiting",
        config: { seed: 4242, ...(abortSignal === undefined ? {} : { abortSignal }) },
      })
    const first = ask(controller.signal)
    await until(() => h.sim.requests().length === 1)
    controller.abort()
    await expect(first).rejects.toThrow(/abort/i)

    await until(() => events.some((event) => event.status === 499))
    const gone = events.find((event) => event.status === 499)!
    expect(gone.costUsd).toBeGreaterThan(0)
    expect(gone.images).toBe(1)
    expect(h.sim.ledger().totals.billedImages).toBe(1)
    const logged = h.logs.map((line) => JSON.parse(line)).find((line) => line.requestId === gone.requestId)
    expect(logged).toMatchObject({ status: 499, clientGone: true })

    const retry = await ask()
    expect(retry.data).toBeDefined()
    expect(retry.sdkHttpResponse?.headers?.["x-peel-cache"]).toBe("hit")
    expect(retry.sdkHttpResponse?.headers?.["x-peel-cost-usd"]).toBe("0.000000")
    expect(h.sim.ledger().totals.billedImages).toBe(1)
  })
})

describe("identical requests in flight", () => {
  it("share one upstream call: one answer is the miss that paid, the other a $0 hit", async () => {
    h.sim.reset()
    const ask = () =>
      client().models.generateContent({
        model: "gemini-3-pro-image",
        contents: "two clients, one fox",
        config: { seed: 77 },
      })
    const answers = await Promise.all([ask(), ask()])
    const caches = answers.map((answer) => answer.sdkHttpResponse?.headers?.["x-peel-cache"]).sort()
    expect(caches).toEqual(["hit", "miss"])
    const costs = answers.map((answer) => Number(answer.sdkHttpResponse?.headers?.["x-peel-cost-usd"])).sort()
    expect(costs[0]).toBe(0)
    expect(costs[1]).toBeCloseTo(h.sim.ledger().totals.billedUsd, 6)
    expect(h.sim.ledger().totals.calls).toBe(1)
    expect(answers[0]!.data).toBe(answers[1]!.data)
  })
})

describe("health", () => {
  it("/healthz and /readyz answer without a key", async () => {
    expect(await (await fetch(`${h.url}/healthz`)).json()).toEqual({ status: "ok" })
    const ready = await fetch(`${h.url}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({ status: "ready", checks: { channels: true, accepting: true, keys: true } })
  })
})

describe("the drain", () => {
  it("refuses new requests (503, Retry-After, Connection: close), finishes the one in flight, pays it once", async () => {
    h.sim.reset()
    const inFlight = client().models.generateContent({ model: "gemini-3-pro-image", contents: "a last ferry" })
    await until(() => h.sim.requests().length === 1)
    await Effect.runPromise(h.gateway.drain)

    const refused = await fetch(`${h.url}/v1beta/models/gemini-3-pro-image:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-goog-api-key": "k" },
      body: JSON.stringify({ contents: [{ parts: [{ text: "one more ferry" }] }] }),
    })
    expect(refused.status).toBe(503)
    expect(refused.headers.get("retry-after")).toBe("5")
    expect(refused.headers.get("connection")).toBe("close")
    expect(((await refused.json()) as { error: { status: string } }).error.status).toBe("UNAVAILABLE")
    const ready = await fetch(`${h.url}/readyz`)
    expect(ready.status).toBe(503)
    expect(((await ready.json()) as { checks: Record<string, boolean> }).checks.accepting).toBe(false)

    const answered = await inFlight
    expect(answered.data).toBeDefined()
    expect(h.sim.ledger().totals.billedImages).toBe(1)
    expect(h.sim.requests()).toHaveLength(1)
  })
})
