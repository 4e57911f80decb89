/**
 * `peel serve` as a real process in front of the simulator: the first stdout line names the URL, requests
 * are answered, and SIGTERM drains — the request in flight finishes (paid once), new work is refused, the
 * process exits 0. The access log on stderr is JSON lines without the upstream key.
 */
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Simulator } from "@peel/simulator"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { root, spawnPeel } from "./cli.ts"

const upstreamKey = "serve-test-upstream-key-SECRET-7"
const pipeline = join(root, "packages", "gateway", "test", "fixtures", "gateway.yaml")

let sim: Simulator.Handle
beforeAll(async () => {
  sim = await Simulator.start({ latency: "1500ms" })
})
afterAll(async () => {
  await sim?.stop()
})

const until = async (condition: () => boolean): Promise<void> => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10))
}

describe("peel serve", () => {
  it("prints its URL first, answers, and drains on SIGTERM: the request in flight finishes, paid once; exit 0", async () => {
    const callLog = join(mkdtempSync(join(tmpdir(), "peel-serve-")), "calls.jsonl")
    const running = spawnPeel(["serve", pipeline, "--port", "0", "--call-log", callLog], {
      GEMINI_BASE_URL: sim.url,
      GEMINI_API_KEY: upstreamKey,
    })
    expect(await running.waitForStdout(/\n/)).toBe(true)
    const url = /^peel gateway listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(running.output().stdout)?.[1]
    expect(url).toBeDefined()

    const inFlight = fetch(`${url}/v1beta/models/gemini-3-pro-image:generateContent`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-goog-api-key": "client-key" },
      body: JSON.stringify({
        contents: [{ parts: [{ text: "a night train" }] }],
        generationConfig: { imageConfig: { aspectRatio: "16:9", imageSize: "2K" } },
      }),
    })
    await until(() => sim.requests().length === 1)
    running.child.kill("SIGTERM")
    const response = await inFlight
    expect(response.status).toBe(200)
    expect(response.headers.get("x-peel-cache")).toBe("miss")
    const body = (await response.json()) as {
      candidates: Array<{ content: { parts: Array<{ inlineData?: object }> } }>
    }
    expect(body.candidates[0]!.content.parts.some((part) => part.inlineData !== undefined)).toBe(true)

    const finished = await running.finished
    expect(finished.code).toBe(0)
    expect(finished.stderr).toContain("SIGTERM: draining")
    expect(sim.ledger().totals.billedImages).toBe(1)
    const access = finished.stderr
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(access).toEqual([
      expect.objectContaining({
        type: "access",
        status: 200,
        path: "/v1beta/models/gemini-3-pro-image:generateContent",
      }),
    ])
    expect(finished.stdout + finished.stderr).not.toContain(upstreamKey)
    expect(finished.stderr).not.toContain("a night train")
    // The call log has the request's line (no key name: no virtual keys here).
    const lines = readFileSync(callLog, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(lines).toContainEqual(expect.objectContaining({ type: "request", outcome: "ok" }))
    expect(readFileSync(callLog, "utf8")).not.toContain(upstreamKey)
  })

  it("exits 2 with the located problem when the pipeline does not load", async () => {
    const running = spawnPeel(["serve", pipeline, "--port", "0"], { GEMINI_BASE_URL: sim.url })
    const finished = await running.finished
    expect(finished.code).toBe(2)
    expect(finished.stderr).toContain("GEMINI_API_KEY")
    expect(finished.stdout).toBe("")
  })
})
