/**
 * The `echo-key` faults: an error that repeats the caller's credential (however it was sent) in the route's
 * own wire shape — as an HTTP error, and (`echo-key-200`) inside an HTTP 200 — so suites can prove a client
 * never passes upstream text on unredacted. Neither is billed.
 */
import { describe, expect, it } from "vitest"
import { Simulator } from "../src/index.ts"
import { useSimulator } from "./helpers.ts"

const state = useSimulator()

const geminiBody = { contents: [{ parts: [{ text: "a fox" }] }] }
const chatBody = (model: string) => ({ model, messages: [{ role: "user", content: "a fox" }] })

interface Case {
  readonly route: Simulator.RouteName
  readonly how: string
  readonly credential: string
  readonly call: (url: string, credential: string) => Promise<Response>
  readonly shape: "google" | "openai"
}

const post = (url: string, body: unknown, headers: Record<string, string>) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  })

const cases: ReadonlyArray<Case> = [
  {
    route: "gemini",
    how: "x-goog-api-key",
    credential: "AIza-echo-header-0001",
    shape: "google",
    call: (url, key) =>
      post(`${url}/v1beta/models/gemini-3-pro-image:generateContent`, geminiBody, { "x-goog-api-key": key }),
  },
  {
    route: "gemini",
    how: "?key=",
    credential: "AIza-echo-query-0002",
    shape: "google",
    call: (url, key) => post(`${url}/v1beta/models/gemini-3-pro-image:generateContent?key=${key}`, geminiBody, {}),
  },
  {
    route: "proxy-gemini",
    how: "Bearer",
    credential: "sk-echo-proxy-gemini-0003",
    shape: "google",
    call: (url, key) =>
      post(`${url}/v1beta/models/gemini-3-pro-image:generateContent`, geminiBody, { authorization: `Bearer ${key}` }),
  },
  {
    route: "vertex",
    how: "Bearer",
    credential: "ya29.echo-vertex-0004",
    shape: "google",
    call: (url, key) =>
      post(
        `${url}/v1beta1/projects/p/locations/global/publishers/google/models/gemini-3-pro-image:generateContent`,
        geminiBody,
        { authorization: `Bearer ${key}` },
      ),
  },
  {
    route: "vertex-express",
    how: "x-goog-api-key",
    credential: "AIza-echo-express-0005",
    shape: "google",
    call: (url, key) =>
      post(`${url}/v1beta1/publishers/google/models/gemini-3-pro-image:generateContent`, geminiBody, {
        "x-goog-api-key": key,
      }),
  },
  {
    route: "openrouter",
    how: "Bearer",
    credential: "sk-or-v1-echo-0006",
    shape: "openai",
    call: (url, key) =>
      post(`${url}/api/v1/chat/completions`, chatBody("google/gemini-3-pro-image"), {
        authorization: `Bearer ${key}`,
      }),
  },
  {
    route: "proxy-chat",
    how: "Bearer",
    credential: "sk-echo-proxy-chat-0007",
    shape: "openai",
    call: (url, key) =>
      post(`${url}/v1/chat/completions`, chatBody("gemini-3-pro-image"), { authorization: `Bearer ${key}` }),
  },
]

describe("echo-key faults repeat the caller's credential in the route's own shape", () => {
  for (const each of cases) {
    it(`${each.route} (${each.how}): echo-key is a 401 error naming the credential`, async () => {
      state.sim.script(each.route, ["echo-key"])
      const response = await each.call(state.sim.url, each.credential)
      const text = await response.text()
      expect(response.status).toBe(401)
      expect(text).toContain(each.credential)
      const body = JSON.parse(text) as { error: { code: number; message: string; status?: string } }
      expect(body.error.code).toBe(401)
      expect(body.error.message).toContain(each.credential)
      if (each.shape === "google") expect(body.error.status).toBe("UNAUTHENTICATED")
      expect(state.sim.ledger().totals.billedImages).toBe(0)
    })

    it(`${each.route} (${each.how}): echo-key-200 carries that error inside an HTTP 200`, async () => {
      state.sim.script(each.route, ["echo-key-200"])
      const response = await each.call(state.sim.url, each.credential)
      const body = (await response.json()) as { error: { code: number; message: string }; choices?: unknown }
      expect(response.status).toBe(200)
      expect(body.error.code).toBe(401)
      expect(body.error.message).toContain(each.credential)
      if (each.shape === "openai") expect(Array.isArray(body.choices)).toBe(true)
      expect(state.sim.ledger().totals.billedImages).toBe(0)
    })
  }

  it("can be drawn at random like any fault", () => {
    expect(Simulator.parseFaults("echo-key=0.1,openrouter:echo-key-200=0.2")).toEqual([
      { kind: "echo-key", probability: 0.1 },
      { kind: "echo-key-200", probability: 0.2, route: "openrouter" },
    ])
  })
})
