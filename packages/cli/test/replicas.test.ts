/**
 * Issue 19, two gateway replicas sharing one Redis: two real `peel serve --redis URL` processes on one state
 * folder (the virtual keys live in its SQLite file; with `--redis` the per-key rpm windows and the key spend
 * ledger live in Redis), a real redis-server, the simulator upstream, and the official SDKs as clients.
 *
 * - One key with rpm 5 used through both replicas alternately gets at most 5 answers in any 60 s in total
 *   (bounded from the burst's own timestamps, so a slow machine that takes over a minute may rightly get
 *   more); the others are the `openai` SDK's `RateLimitError` (429 with Retry-After), from either replica.
 * - One key's budget holds across both replicas under concurrency: requests sent to both at once spend at
 *   most the budget (the upstream's bill, the key's ledger — through either replica's admin API and
 *   `peel keys list --redis URL` — and the answers' costs all agree), and the refused ones are
 *   `@google/genai` `ApiError`s with status 429.
 * - For comparison, two replicas on their own memory rate limits (no `--redis`): each allows the key's 5,
 *   so the same alternating burst gets 10 answers — the failure the shared store prevents. These two run in
 *   this process (`Gateway.start` with the options `peel serve --state DIR --keys required` gives it): two
 *   more `peel serve` processes would double the test's start-up on a loaded machine for no more truth.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ApiError, GoogleGenAI } from "@google/genai"
import { Gateway } from "@peel/gateway"
import { Simulator } from "@peel/simulator"
import { Effect, Exit, Scope } from "effect"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RedisServer, startRedis } from "../../testkit/src/RedisServer.ts"
import { loadOptions } from "../src/plugins.ts"
import { peel, type Running, root, spawnPeel } from "./cli.ts"

const pipeline = join(root, "packages", "cli", "test", "fixtures", "google-only.yaml")
const model = "gemini-3-pro-image"
const adminKey = "replicas-admin-key-SECRET-7"
const upstreamKey = "replicas-upstream-key-SECRET-19"
const rpm = 5
const windowMillis = 60_000

let sim: Simulator.Handle
let redis: RedisServer
const started: Array<Running> = []
const scope = Effect.runSync(Scope.make())

interface Replica {
  readonly url: string
}

/** `peel serve` on a free port; resolves with its URL once it prints its first line. */
const serve = async (extra: ReadonlyArray<string>): Promise<Replica> => {
  const running = spawnPeel(
    ["serve", pipeline, "--port", "0", "--keys", "required", "--admin-key-env", "PEEL_ADMIN_KEY", ...extra],
    { GEMINI_BASE_URL: sim.url, GEMINI_API_KEY: upstreamKey, PEEL_ADMIN_KEY: adminKey },
  )
  started.push(running)
  const line = /peel gateway listening on (http:\/\/\S+)\n/
  if (!(await running.waitForStdout(line))) throw new Error(`peel serve ended: ${running.output().stderr}`)
  return { url: line.exec(running.output().stdout)![1]! }
}

/** What `peel serve PIPELINE --state DIR --keys required --admin-key-env VAR` starts, in this process. */
const serveHere = async (state: string): Promise<Replica> => {
  const running = await Effect.runPromise(
    Gateway.start({
      pipeline,
      port: 0,
      stateDir: state,
      load: { ...loadOptions, env: { GEMINI_BASE_URL: sim.url, GEMINI_API_KEY: upstreamKey } },
      accessLog: false,
      keys: { mode: "required", adminKey },
    }).pipe(Scope.provide(scope)),
  )
  return { url: running.url }
}

const stateFolder = () => join(mkdtempSync(join(tmpdir(), "peel-replicas-")), "state")

/** A virtual key made through replica `via`'s admin API (the other replica reads it from the shared store). */
const createKey = async (via: Replica, body: { name: string; rpm?: number; budget?: string }): Promise<string> => {
  const response = await fetch(`${via.url}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  })
  expect(response.status).toBe(201)
  return ((await response.json()) as { key: string }).key
}

/** The key's spend this window, as the admin API reads it from the key spend ledger. */
const spentOf = async (via: Replica, name: string): Promise<number> => {
  const response = await fetch(`${via.url}/admin/keys`, { headers: { authorization: `Bearer ${adminKey}` } })
  const { keys } = (await response.json()) as { keys: Array<{ name: string; spentUsd: number }> }
  return keys.find((key) => key.name === name)!.spentUsd
}

/** The state folder of the replicas sharing Redis (their keys). */
let sharedState = ""
let redisPair: readonly [Replica, Replica]
let memoryPair: readonly [Replica, Replica]

beforeAll(async () => {
  ;[sim, redis] = await Promise.all([Simulator.start({ port: 0, seed: 19, latency: "200ms" }), startRedis()])
  // Both pairs on one state folder each: the keys are in its SQLite file, read by either replica.
  sharedState = stateFolder()
  const shared = ["--state", sharedState, "--redis", redis.url]
  const own = stateFolder()
  ;[redisPair, memoryPair] = await Promise.all([
    Promise.all([serve(shared), serve(shared)]),
    Promise.all([serveHere(own), serveHere(own)]),
  ])
}, 120_000)

afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  for (const running of started) if (running.child.exitCode === null) running.child.kill("SIGTERM")
  await Promise.all(started.map((running) => running.finished))
  await sim?.stop()
  await redis?.close()
})

interface Answer {
  readonly replica: number
  readonly ok: boolean
  readonly error?: unknown
}

/**
 * `count` image requests with the `openai` SDK, one after another, alternating between the two replicas
 * (no retries: a 429 is an answer). Returns the answers and how long the burst took, first send to last answer.
 */
const alternate = async (replicas: readonly [Replica, Replica], key: string, count: number) => {
  const clients = replicas.map((replica) => new OpenAI({ apiKey: key, baseURL: `${replica.url}/v1`, maxRetries: 0 }))
  const answers: Array<Answer> = []
  const startedAt = performance.now()
  for (let index = 0; index < count; index++) {
    const replica = index % 2
    try {
      const image = await clients[replica]!.images.generate({ model, prompt: `kite ${index}`, quality: "low" })
      expect(image.data).toHaveLength(1)
      answers.push({ replica, ok: true })
    } catch (error) {
      answers.push({ replica, ok: false, error })
    }
  }
  return { answers, elapsedMillis: performance.now() - startedAt }
}

/** The most starts `rpm` allows over a burst this long: `rpm` in each 60 s span that covers it. */
const allowedOver = (elapsedMillis: number) => rpm * Math.max(1, Math.ceil(elapsedMillis / windowMillis))

describe("two gateway replicas sharing Redis", () => {
  it("a key with rpm 5 used through both alternately gets at most 5 answers a minute in total; the rest are 429 RateLimitErrors with Retry-After", async () => {
    const key = await createKey(redisPair[0], { name: "shared-rpm", rpm, budget: "100/1d" })
    const callsBefore = sim.ledger().totals.calls
    const { answers, elapsedMillis } = await alternate(redisPair, key, 12)
    const ok = answers.filter((answer) => answer.ok)

    // The first 5 find the window empty, whichever replica they reach; then the window is full for both.
    expect(answers.slice(0, rpm).every((answer) => answer.ok)).toBe(true)
    expect(ok.length).toBeLessThanOrEqual(allowedOver(elapsedMillis))
    if (elapsedMillis < windowMillis) expect(ok.length).toBe(rpm)
    // Both replicas answered some and refused some: the limit is the key's, not a replica's.
    for (const replica of [0, 1]) {
      expect(answers.some((answer) => answer.replica === replica && answer.ok)).toBe(true)
      expect(answers.some((answer) => answer.replica === replica && !answer.ok)).toBe(true)
    }
    for (const answer of answers.filter((each) => !each.ok)) {
      expect(answer.error).toBeInstanceOf(OpenAI.RateLimitError)
      const error = answer.error as InstanceType<typeof OpenAI.RateLimitError>
      expect(error.status).toBe(429)
      expect(error.code).toBe("rate_limit_exceeded")
      const retryAfter = Number(error.headers.get("retry-after"))
      expect(Number.isInteger(retryAfter)).toBe(true)
      expect(retryAfter).toBeGreaterThanOrEqual(1)
      expect(retryAfter).toBeLessThanOrEqual(60)
    }
    // A refusal never reaches the upstream.
    expect(sim.ledger().totals.calls - callsBefore).toBe(ok.length)
  }, 60_000)

  it("a key's budget holds across both replicas under concurrency: spend never passes it, the refused are 429 ApiErrors", async () => {
    // The price of one image, from one request through a key without limits.
    const probe = await createKey(redisPair[0], { name: "price-probe" })
    const priced = await new GoogleGenAI({
      apiKey: probe,
      httpOptions: { baseUrl: redisPair[1].url },
    }).models.generateContent({ model, contents: "the price of one" })
    const price = Number(priced.sdkHttpResponse?.headers?.["x-peel-cost-usd"])
    expect(price).toBeGreaterThan(0)

    // Room for 3 images and a half: a 4th never fits.
    const images = 3
    const limitUsd = Number((price * (images + 0.5)).toFixed(6))
    const key = await createKey(redisPair[1], { name: "shared-budget", budget: `${limitUsd}/1d` })
    const billedBefore = sim.ledger().totals.billedUsd
    const clients = redisPair.map((replica) => new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: replica.url } }))
    const settled = await Promise.allSettled(
      Array.from({ length: 12 }, (_, index) =>
        clients[index % 2]!.models.generateContent({ model, contents: `lantern ${index}` }),
      ),
    )
    const ok = settled.filter((result) => result.status === "fulfilled")
    const refused = settled.filter((result) => result.status === "rejected")
    for (const result of refused) {
      expect(result.reason).toBeInstanceOf(ApiError)
      expect((result.reason as ApiError).status).toBe(429)
    }
    const answeredUsd = ok.reduce(
      (sum, result) => sum + Number(result.value.sdkHttpResponse?.headers?.["x-peel-cost-usd"]),
      0,
    )
    const billedUsd = sim.ledger().totals.billedUsd - billedBefore
    // Every reservation is the image's price, so exactly the images that fit were made, through both replicas.
    expect(ok).toHaveLength(images)
    expect(billedUsd).toBeLessThanOrEqual(limitUsd)
    expect(billedUsd).toBeCloseTo(images * price, 4)
    expect(answeredUsd).toBeCloseTo(billedUsd, 5)
    // Both replicas read the one ledger: it holds all of it.
    for (const replica of redisPair) expect(await spentOf(replica, "shared-budget")).toBeCloseTo(billedUsd, 5)
    // And so does `peel keys list --redis URL` beside them.
    const listed = await peel(["keys", "list", "--json", "--state", sharedState, "--redis", redis.url])
    expect(listed.code).toBe(0)
    const views = listed.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { name: string; spentUsd: number })
    expect(views.find((view) => view.name === "shared-budget")?.spentUsd).toBeCloseTo(billedUsd, 5)
  }, 60_000)
})

describe("two gateway replicas on their own memory rate limits, for comparison", () => {
  it("each replica allows the key's 5: the same alternating burst gets 10 answers", async () => {
    const key = await createKey(memoryPair[0], { name: "own-rpm", rpm, budget: "100/1d" })
    const { answers } = await alternate(memoryPair, key, 12)
    // Each replica admits the first 5 it sees whatever the time, so at least 10 in all: twice the key's rpm.
    expect(answers.filter((answer) => answer.ok).length).toBeGreaterThanOrEqual(2 * rpm)
    for (const replica of [0, 1])
      expect(answers.filter((answer) => answer.replica === replica && answer.ok).length).toBeGreaterThanOrEqual(rpm)
  }, 60_000)
})
