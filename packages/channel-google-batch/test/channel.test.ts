/**
 * The Batch channel against the simulator's whole batch lifecycle: inline and file jobs, paging,
 * per-request errors, expiry, cancel, failed jobs, and both spellings of every state.
 */
import { type Channel, Errors, Pricing } from "@peel/core"
import { Simulator } from "@peel/simulator"
import { Effect, Exit, Redacted } from "effect"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { GoogleBatchChannel, GoogleBatchClient } from "../src/index.ts"

const secret = "batch-key-SECRET-0042"
let sim: Simulator.Handle
// The simulator's batch schedule runs on this clock, moved by `settle`: a job's state never depends on how
// long a busy machine took between two calls.
let now = Date.UTC(2026, 0, 1)
beforeAll(async () => {
  sim = await Simulator.start({
    port: 0,
    seed: 3,
    clock: () => now,
    batch: { runningAfterMs: 20, doneAfterMs: 60, expireAfterMs: 150 },
  })
})
afterAll(() => sim.stop())
beforeEach(() => sim.reset())

const build = (
  extra: Partial<GoogleBatchChannel.Config> = {},
  clientOptions: Partial<GoogleBatchClient.ClientOptions> = {},
): Promise<Channel.Channel> =>
  Effect.runPromise(
    GoogleBatchChannel.make(
      { apiKey: Redacted.make(secret), baseUrl: sim.url, ...extra },
      { name: "batch", file: "test", warn: () => {} },
      clientOptions,
    ),
  )

const request = (id: string, overrides: Partial<Channel.ChannelRequest> = {}): Channel.ChannelRequest => ({
  id,
  prompt: `a lighthouse, picture ${id}`,
  model: "gemini-3-pro-image",
  size: "1K",
  aspectRatio: "1:1",
  ...overrides,
})

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
/** Poll, moving the simulator's clock 15 ms between polls, until the job has ended. */
const settle = async (channel: Channel.Channel, job: string): Promise<Channel.BatchJob> => {
  for (let poll = 0; poll < 100; poll++) {
    const polled = await run(channel.batch!.poll(job))
    if (polled.state !== "pending" && polled.state !== "running") return polled
    now += 15
  }
  throw new Error(`batch job ${job} never ended`)
}
const bodies = () =>
  sim.requests().filter((recorded) => recorded.route === "gemini-batch" && recorded.method === "POST")

describe("google-batch channel", () => {
  it("is a batch channel priced at half of Google's price, and refuses real-time work without a call", async () => {
    const channel = await build()
    expect(channel.capabilities.batch).toBe(true)
    expect(Pricing.tierOf(channel)).toBe("batch")
    expect(channel.price(request("a"))).toBeCloseTo(Pricing.expectedCost("gemini-3-pro-image", "1K") / 2, 6)
    const exit = await Effect.runPromiseExit(channel.generate(request("a")))
    expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("Unsupported")
    expect(sim.ledger().totals.calls).toBe(0)
  })

  it("sends a small job inline and collects one image per request, billed once at the batch price", async () => {
    const channel = await build()
    const job = await run(
      channel.batch!.submit([request("a"), request("b", { aspectRatio: "16:9" })], { displayName: "peel-inline" }),
    )
    expect(job.name).toMatch(/^batches\//)
    expect(job.displayName).toBe("peel-inline")
    expect(job.state).toBe("pending")
    expect(JSON.stringify(bodies()[0]?.body)).toContain('"requests"')
    expect((await settle(channel, job.name)).state).toBe("succeeded")
    const results = await run(channel.batch!.collect(job.name))
    expect(results.map((entry) => entry.id).sort()).toEqual(["a", "b"])
    for (const entry of results) {
      expect(Errors.isChannelError(entry.result)).toBe(false)
      expect((entry.result as Channel.ChannelImage).bytes.length).toBeGreaterThan(100)
      expect((entry.result as Channel.ChannelImage).usage?.outputImageTokens).toBe(1120)
    }
    // Collecting again is free: the results are read, not made.
    await run(channel.batch!.collect(job.name))
    expect(sim.ledger().totals.billedImages).toBe(2)
    expect(sim.ledger().totals.billedUsd).toBeCloseTo(2 * Pricing.expectedCost("gemini-3-pro-image", "1K", "batch"), 2)
  })

  it("sends a large job as a JSONL file through the Files API and reads the result file", async () => {
    const channel = await build({ inlineMaxRequests: 2 })
    const requests = ["f1", "f2", "f3"].map((id) => request(id))
    const job = await run(channel.batch!.submit(requests, { displayName: "peel-file" }))
    const uploads = sim.requests().filter((recorded) => recorded.route === "files")
    expect(uploads.length).toBeGreaterThanOrEqual(2)
    expect(JSON.stringify(bodies().at(-1)?.body)).toContain('"fileName"')
    expect((await settle(channel, job.name)).state).toBe("succeeded")
    const results = await run(channel.batch!.collect(job.name))
    expect(results.map((entry) => entry.id).sort()).toEqual(["f1", "f2", "f3"])
    expect(results.every((entry) => !Errors.isChannelError(entry.result))).toBe(true)
    expect(sim.ledger().totals.billedImages).toBe(3)
  })

  it("bounds a job by requests and bytes", async () => {
    const channel = await build({ maxJobRequests: 2, maxJobBytes: 100_000 })
    expect(channel.batch!.limits).toEqual({ maxRequests: 2, maxBytes: 100_000 })
    expect(channel.batch!.sizeOf!(request("a"))).toBeGreaterThan(50)
    const exit = await Effect.runPromiseExit(
      channel.batch!.submit(
        ["a", "b", "c"].map((id) => request(id)),
        { displayName: "too-big" },
      ),
    )
    expect(Exit.isFailure(exit)).toBe(true)
    expect(sim.ledger().totals.calls).toBe(0)
  })

  it("reports per-request errors and content blocks as typed errors beside the images", async () => {
    const channel = await build()
    sim.script("gemini-batch", ["ok", "ok", "safety", "503", "429"])
    const job = await run(
      channel.batch!.submit(
        ["e1", "e2", "e3", "e4"].map((id) => request(id)),
        { displayName: "peel-errors" },
      ),
    )
    await settle(channel, job.name)
    const results = new Map((await run(channel.batch!.collect(job.name))).map((entry) => [entry.id, entry.result]))
    expect(Errors.isChannelError(results.get("e1"))).toBe(false)
    expect((results.get("e2") as Errors.ChannelError)._tag).toBe("ContentBlocked")
    expect((results.get("e3") as Errors.ChannelError)._tag).toBe("Unavailable")
    expect((results.get("e4") as Errors.ChannelError)._tag).toBe("RateLimited")
    expect(sim.ledger().totals.billedImages).toBe(1)
  })

  it("sees an expired job (no results) and a failed job", async () => {
    const channel = await build()
    sim.script("gemini-batch", ["hang"])
    const expired = await run(channel.batch!.submit([request("x")], { displayName: "peel-expired" }))
    expect((await settle(channel, expired.name)).state).toBe("expired")
    expect(Exit.isFailure(await Effect.runPromiseExit(channel.batch!.collect(expired.name)))).toBe(true)
    sim.script("gemini-batch", ["503"])
    const failed = await run(channel.batch!.submit([request("y")], { displayName: "peel-failed" }))
    expect((await settle(channel, failed.name)).state).toBe("failed")
    expect(sim.ledger().totals.billedImages).toBe(0)
  })

  it("cancels a job", async () => {
    const channel = await build()
    sim.script("gemini-batch", ["hang"])
    const job = await run(channel.batch!.submit([request("c")], { displayName: "peel-cancel" }))
    await run(channel.batch!.cancel!(job.name))
    expect((await run(channel.batch!.poll(job.name))).state).toBe("cancelled")
  })

  it("finds a job by its display name across pages", async () => {
    const channel = await build()
    for (let index = 0; index < 5; index += 1)
      await run(channel.batch!.submit([request(`p${index}`)], { displayName: `peel-page-${index}` }))
    const found = await run(channel.batch!.find!("peel-page-0"))
    expect(found?.displayName).toBe("peel-page-0")
    expect(await run(channel.batch!.find!("peel-never-sent"))).toBeUndefined()
    const client = GoogleBatchClient.make({ channel: "batch", apiKey: Redacted.make(secret), baseUrl: sim.url })
    const listed = await run(client.list({ pageSize: 2 }))
    expect(listed.map((job) => job.displayName).sort()).toEqual([0, 1, 2, 3, 4].map((index) => `peel-page-${index}`))
    const pages = sim.requests().filter((recorded) => recorded.method === "GET" && /\/batches$/.test(recorded.path))
    expect(pages.filter((recorded) => recorded.query.pageSize === "2").length).toBe(3)
  })

  it("reads every state in both spellings", async () => {
    for (const [bare, state] of [
      ["PENDING", "pending"],
      ["RUNNING", "running"],
      ["SUCCEEDED", "succeeded"],
      ["FAILED", "failed"],
      ["CANCELLED", "cancelled"],
      ["EXPIRED", "expired"],
    ] as const) {
      expect(GoogleBatchChannel.stateOf(`BATCH_STATE_${bare}`)).toBe(state)
      expect(GoogleBatchChannel.stateOf(`JOB_STATE_${bare}`)).toBe(state)
    }
    expect(GoogleBatchChannel.stateOf("JOB_STATE_SOMETHING_NEW")).toBeUndefined()
  })

  it("follows a job whose upstream spells states JOB_STATE_* on the wire (the REST docs' spelling)", async () => {
    const rewrite: typeof fetch = async (input, init) => {
      const response = await fetch(input, init)
      const type = response.headers.get("content-type") ?? ""
      if (!type.includes("json")) return response
      const text = (await response.text()).replaceAll("BATCH_STATE_", "JOB_STATE_")
      return new Response(text, { status: response.status, headers: response.headers })
    }
    const channel = await build({}, { fetch: rewrite })
    sim.script("gemini-batch", ["ok", "ok"])
    const job = await run(channel.batch!.submit([request("s1")], { displayName: "peel-spelling" }))
    expect((await settle(channel, job.name)).state).toBe("succeeded")
    expect((await run(channel.batch!.collect(job.name))).length).toBe(1)
    sim.script("gemini-batch", ["hang"])
    const expired = await run(channel.batch!.submit([request("s2")], { displayName: "peel-spelling-2" }))
    expect((await settle(channel, expired.name)).state).toBe("expired")
  })

  it("never shows the key in errors", async () => {
    const channel = await build()
    sim.script("gemini-batch", ["echo-key"])
    const exit = await Effect.runPromiseExit(channel.batch!.poll("batches/unknown"))
    expect(Exit.isFailure(exit)).toBe(true)
    expect(JSON.stringify(exit)).not.toContain(secret)
    expect(String(exit)).not.toContain(secret)
  })
})

describe("google-batch channel: reference images and seed", () => {
  const png = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC"
  const withImages = request("edit", {
    images: [{ bytes: new Uint8Array(Buffer.from(png, "base64")), mimeType: "image/png" }],
    seed: 8,
  })

  it("takes reference images, prices their input tokens at the batch tier and counts them in a job's size", async () => {
    const channel = await build()
    expect(channel.capabilities.referenceImages).toBe(14)
    // 1K Pro at half price, plus one 560-token input image at half of $2 per 1M
    expect(channel.price(withImages)).toBeCloseTo(0.0672 + 0.00056, 6)
    expect(channel.batch!.sizeOf!(withImages)).toBeGreaterThan(channel.batch!.sizeOf!(request("edit")) + png.length)
    expect(GoogleBatchChannel.fileLine(withImages)).toContain(`"inlineData":{"mimeType":"image/png","data":"${png}"}`)
  })

  it("sends them inline; the simulator bills and records them", async () => {
    const channel = await build()
    const job = await run(channel.batch!.submit([withImages], { displayName: "edit-job" }))
    expect((await settle(channel, job.name)).state).toBe("succeeded")
    const collected = await run(channel.batch!.collect(job.name))
    expect(collected.map((entry) => entry.id)).toEqual(["edit"])
    const call = sim.ledger().calls.find((each) => each.route === "gemini-batch")!
    expect([call.referenceImages, call.seed]).toEqual([1, 8])
  })
})
