import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { imageSize } from "image-size"
import { describe, expect, it } from "vitest"
import { Simulator } from "../src/index.ts"
import { gemini, useSimulator } from "./helpers.ts"

// The simulator reads this clock for the batch schedule (jobs run after 1 s, finish after 3 s): each test
// moves it, so a job's state depends on the steps below, never on how busy the machine is.
let now = Date.UTC(2026, 0, 1)
const state = useSimulator({ clock: () => now })
const advance = (millis: number) => {
  now += millis
}

const finished = (job: { state?: string }) => !/PENDING|RUNNING/.test(String(job.state))

/** Move the clock past the default schedule and read the job once: it has finished. */
const afterSchedule = async (ai: ReturnType<typeof gemini>, name: string) => {
  advance(3_000)
  const job = await ai.batches.get({ name })
  expect(finished(job)).toBe(true)
  return job
}

describe("Gemini Batch API through @google/genai", () => {
  it("runs an inline job PENDING → SUCCEEDED with results in metadata.output, billed at half price", async () => {
    const ai = gemini(state.sim.url)
    const job = await ai.batches.create({
      model: "gemini-3-pro-image",
      src: [
        {
          contents: [{ parts: [{ text: "a fox" }], role: "user" }],
          config: { responseModalities: ["IMAGE"], imageConfig: { aspectRatio: "16:9", imageSize: "2K" } },
          metadata: { key: "fox" },
        },
        { contents: [{ parts: [{ text: "a owl" }], role: "user" }], metadata: { key: "owl" } },
      ],
      config: { displayName: "inline-job" },
    })
    expect(job.name).toMatch(/^batches\//)
    expect(job.state).toBe("JOB_STATE_PENDING")
    advance(999)
    expect((await ai.batches.get({ name: job.name! })).state).toBe("JOB_STATE_PENDING")
    advance(1)
    expect((await ai.batches.get({ name: job.name! })).state).toBe("JOB_STATE_RUNNING")
    advance(1_999)
    expect((await ai.batches.get({ name: job.name! })).state).toBe("JOB_STATE_RUNNING")
    expect(state.sim.ledger().billed).toEqual([])
    advance(1)
    const done = await ai.batches.get({ name: job.name! })
    expect(done.state).toBe("JOB_STATE_SUCCEEDED")
    const responses = done.dest?.inlinedResponses ?? []
    expect(responses.map((entry) => entry.metadata?.key)).toEqual(["fox", "owl"])
    const part = responses[0]!.response!.candidates![0]!.content!.parts!.find(
      (candidate) => candidate.inlineData !== undefined,
    )!
    const size = imageSize(Buffer.from(part.inlineData!.data!, "base64"))
    expect([size.width, size.height]).toEqual([2752, 1536])
    const ledger = state.sim.ledger()
    expect(ledger.billed.map((bill) => bill.tier)).toEqual(["batch", "batch"])
    // image-only (responseModalities ["IMAGE"]): thoughts (96) but no text tokens
    expect(ledger.billed[0]!.usd).toBeCloseTo(((2 * 2 + 1120 * 120 + 96 * 12) / 1e6) * 0.5, 6)
  })

  it("takes JSONL input through the Files API and returns a results file", async () => {
    const ai = gemini(state.sim.url)
    const folder = mkdtempSync(join(tmpdir(), "peel-batch-"))
    const input = join(folder, "requests.jsonl")
    writeFileSync(
      input,
      [
        {
          key: "a",
          request: {
            contents: [{ parts: [{ text: "a" }] }],
            generation_config: { imageConfig: { aspectRatio: "1:1", imageSize: "1K" } },
          },
        },
        {
          key: "b",
          request: {
            contents: [{ parts: [{ text: "b" }] }],
            generation_config: { imageConfig: { aspectRatio: "9:16", imageSize: "4K" } },
          },
        },
      ]
        .map((line) => JSON.stringify(line))
        .join("\n"),
    )
    const file = await ai.files.upload({
      file: input,
      config: { mimeType: "application/jsonl", displayName: "requests" },
    })
    expect(file.name).toMatch(/^files\//)
    const job = await ai.batches.create({
      model: "gemini-3-pro-image",
      src: file.name!,
      config: { displayName: "file-job" },
    })
    const done = await afterSchedule(ai, job.name!)
    expect(done.state).toBe("JOB_STATE_SUCCEEDED")
    expect(done.dest?.fileName).toMatch(/^files\/batch-/)
    const output = join(folder, "results.jsonl")
    await ai.files.download({ file: done.dest!.fileName!, downloadPath: output })
    const lines = readFileSync(output, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line))
    expect(lines.map((line) => line.key)).toEqual(["a", "b"])
    const data = lines[1].response.candidates[0].content.parts.find((part: { inlineData?: unknown }) => part.inlineData)
      .inlineData.data
    expect(imageSize(Buffer.from(data, "base64")).height).toBe(5504)
  })

  it("reports per-request errors inside a successful job, and a failed job", async () => {
    const ai = gemini(state.sim.url)
    state.sim.script("gemini-batch", ["ok", "ok", "500", "safety"])
    const job = await ai.batches.create({
      model: "gemini-3-pro-image",
      src: ["one", "two", "three"].map((text) => ({ contents: [{ parts: [{ text }], role: "user" }] })),
    })
    const done = await afterSchedule(ai, job.name!)
    const responses = done.dest!.inlinedResponses!
    expect(responses[0]!.response).toBeDefined()
    expect(responses[1]!.error).toMatchObject({ code: 13 })
    expect(responses[2]!.response!.candidates![0]!.finishReason).toBe("IMAGE_SAFETY")
    expect(state.sim.ledger().totals.billedImages).toBe(1)

    state.sim.script("gemini-batch", ["503"])
    const failing = await ai.batches.create({
      model: "gemini-3-pro-image",
      src: [{ contents: [{ parts: [{ text: "x" }], role: "user" }] }],
    })
    expect((await afterSchedule(ai, failing.name!)).state).toBe("JOB_STATE_FAILED")
  })

  it("lists with paging that terminates, cancels, and deletes (DELETE and :delete)", async () => {
    const ai = gemini(state.sim.url)
    const names: Array<string> = []
    for (let index = 0; index < 5; index++) {
      const job = await ai.batches.create({
        model: "gemini-2.5-flash-image",
        src: [{ contents: [{ parts: [{ text: `p${index}` }], role: "user" }] }],
      })
      names.push(job.name!)
    }
    const listed: Array<string> = []
    for await (const job of await ai.batches.list({ config: { pageSize: 2 } })) listed.push(job.name!)
    expect(listed.sort()).toEqual([...names].sort())
    const pages = state.sim.requests().filter((request) => request.method === "GET" && /\/batches$/.test(request.path))
    expect(pages).toHaveLength(3)

    // A job that runs at once and stays RUNNING for an hour of the test's clock, so the cancel lands first.
    const patient = await Simulator.start({
      port: 0,
      clock: () => now,
      batch: { runningAfterMs: 0, doneAfterMs: 3_600_000 },
    })
    const slowClient = gemini(patient.url)
    const slow = await slowClient.batches.create({
      model: "gemini-2.5-flash-image",
      src: [{ contents: [{ parts: [{ text: "c" }], role: "user" }] }],
    })
    expect((await slowClient.batches.get({ name: slow.name! })).state).toBe("JOB_STATE_RUNNING")
    await slowClient.batches.cancel({ name: slow.name! })
    expect((await slowClient.batches.get({ name: slow.name! })).state).toBe("JOB_STATE_CANCELLED")
    await patient.stop()

    await ai.batches.delete({ name: names[0]! })
    const viaPost = await fetch(`${state.sim.url}/v1beta/${names[1]}:delete`, {
      method: "POST",
      headers: { "x-goog-api-key": "k" },
    })
    expect(viaPost.status).toBe(200)
    const gone = await fetch(`${state.sim.url}/v1beta/${names[0]}`, { headers: { "x-goog-api-key": "k" } })
    expect(gone.status).toBe(404)
  })
})
