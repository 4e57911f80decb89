/** Faults for one model only: Pro fails on every route while Flash works. */
import type { ApiError, GoogleGenAI } from "@google/genai"
import type { APIError, default as OpenAI } from "openai"
import { describe, expect, it } from "vitest"
import { Simulator } from "../src/index.ts"
import { gemini, openRouter, proxyChat, useSimulator, vertexExpress, vertexProject } from "./helpers.ts"

const state = useSimulator({ timeScale: 0.001, faults: "503@gemini-3-pro-image=1" })

const thrownBy = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  )

const statusOf = (error: unknown): number =>
  error === undefined ? 200 : ((error as ApiError | APIError).status ?? Number.NaN)

const google = (client: GoogleGenAI, model: string) =>
  thrownBy(client.models.generateContent({ model, contents: "a fox" })).then(statusOf)

const chat = (client: OpenAI, model: string) =>
  thrownBy(
    client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "a fox" }],
      // @ts-expect-error OpenRouter extension
      modalities: ["image", "text"],
    }),
  ).then(statusOf)

/** One call per route for `model` (Google's id); the HTTP status each got. */
const everyRoute = async (url: string, model: string) => ({
  gemini: await google(gemini(url), model),
  vertex: await google(vertexProject(url), model),
  "vertex-express": await google(vertexExpress(url), model),
  "proxy-gemini": (
    await fetch(`${url}/v1beta/models/${model}:generateContent`, {
      method: "POST",
      headers: { authorization: "Bearer sk-proxy", "content-type": "application/json" },
      body: JSON.stringify({ contents: [{ parts: [{ text: "a fox" }] }] }),
    })
  ).status,
  openrouter: await chat(openRouter(url), `google/${model}`),
  "proxy-chat": await chat(proxyChat(url), model),
})

const allRoutes = (status: number) => ({
  gemini: status,
  vertex: status,
  "vertex-express": status,
  "proxy-gemini": status,
  openrouter: status,
  "proxy-chat": status,
})

describe("the fault syntax [route:]kind[@model]=probability", () => {
  it("parses a model, with or without a route; aliases and OpenRouter's google/ prefix resolve to Google's id", () => {
    expect(Simulator.parseFaults("503@gemini-3-pro-image=1")).toEqual([
      { kind: "503", probability: 1, model: "gemini-3-pro-image" },
    ])
    expect(Simulator.parseFaults("429=0.2, vertex:429-daily@gemini-3.1-flash-image=0.5")).toEqual([
      { kind: "429", probability: 0.2 },
      { kind: "429-daily", probability: 0.5, route: "vertex", model: "gemini-3.1-flash-image" },
    ])
    expect(Simulator.parseFaults("hang@nano-banana-pro=0.1,503@google/gemini-2.5-flash-image=1")).toEqual([
      { kind: "hang", probability: 0.1, model: "gemini-3-pro-image" },
      { kind: "503", probability: 1, model: "gemini-2.5-flash-image" },
    ])
  })

  it("rejects an unknown model, and says how to write a model given where a route goes", () => {
    expect(() => Simulator.parseFaults("503@gemini-9-ultra=1")).toThrow(/unknown model "gemini-9-ultra"/)
    expect(() => Simulator.parseFaults("gemini-3-pro-image:503=1")).toThrow(
      /"gemini-3-pro-image" is a model, not a route; write 503@gemini-3-pro-image=probability/,
    )
    expect(() => Simulator.parseFaults("model=gemini-3-pro-image:503=1")).toThrow(
      /\[route:\]kind\[@model\]=probability/,
    )
    expect(() => Simulator.parseFaults("geminii:503=1")).toThrow(/unknown route "geminii"/)
  })
})

describe("rules for one model", () => {
  it("503@gemini-3-pro-image=1: Pro fails on every route; both Flash models work everywhere", async () => {
    expect(await everyRoute(state.sim.url, "gemini-3-pro-image")).toEqual(allRoutes(503))
    expect(await everyRoute(state.sim.url, "gemini-3.1-flash-image")).toEqual(allRoutes(200))
    expect(await everyRoute(state.sim.url, "gemini-2.5-flash-image")).toEqual(allRoutes(200))
    const ledger = state.sim.ledger()
    expect(ledger.totals.billedImages).toBe(12)
    expect(new Set(ledger.calls.filter((call) => call.status === 503).map((call) => call.model))).toEqual(
      new Set(["gemini-3-pro-image"]),
    )
  })

  it("a route and a model together: only that pair fails; rules set at run time, reset restores the initial ones", async () => {
    state.sim.setFaults("vertex:429@gemini-3-pro-image=1")
    expect(await everyRoute(state.sim.url, "gemini-3-pro-image")).toEqual({ ...allRoutes(200), vertex: 429 })
    expect(await everyRoute(state.sim.url, "gemini-3.1-flash-image")).toEqual(allRoutes(200))
    state.sim.setFaults([{ kind: "500", probability: 1, model: "nano-banana-2" }])
    expect(await google(gemini(state.sim.url), "gemini-3.1-flash-image")).toBe(500)
    expect(await google(gemini(state.sim.url), "gemini-3-pro-image")).toBe(200)
    expect(() => state.sim.setFaults([{ kind: "500", probability: 1, model: "gemini-9" }])).toThrow(/unknown model/)
    state.sim.reset()
    expect(await google(gemini(state.sim.url), "gemini-3-pro-image")).toBe(503)
  })

  it("the Options take parsed rules with a model too", async () => {
    const sim = await Simulator.start({ port: 0, faults: [{ kind: "403", probability: 1, model: "nano-banana-pro" }] })
    try {
      expect(await google(gemini(sim.url), "gemini-3-pro-image")).toBe(403)
      expect(await google(gemini(sim.url), "gemini-2.5-flash-image")).toBe(200)
    } finally {
      await sim.stop()
    }
  })
})

describe("scripts for one model", () => {
  it("script('*', faults, { model }) is taken only by calls for that model, on any route, in order", async () => {
    state.sim.setFaults([])
    state.sim.script("*", ["503", "429", "hang"], { model: "gemini-3-pro-image" })
    expect(await google(gemini(state.sim.url), "gemini-3.1-flash-image")).toBe(200)
    expect(await chat(openRouter(state.sim.url), "google/gemini-2.5-flash-image")).toBe(200)
    expect(await google(vertexProject(state.sim.url), "gemini-3-pro-image")).toBe(503)
    expect(await chat(openRouter(state.sim.url), "google/gemini-3-pro-image")).toBe(429)
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 50)
    const hung = await thrownBy(
      gemini(state.sim.url).models.generateContent({
        model: "gemini-3-pro-image",
        contents: "x",
        config: { abortSignal: controller.signal },
      }),
    )
    expect((hung as Error).name).toBe("AbortError")
    expect(await google(gemini(state.sim.url), "gemini-3-pro-image")).toBe(200)
  })

  it("the most specific script answers first: route and model, any route and model, route, any route", async () => {
    state.sim.setFaults([])
    state.sim.script("*", ["500"])
    state.sim.script("gemini", ["502"])
    state.sim.script("*", ["504"], { model: "gemini-3-pro-image" })
    state.sim.script("gemini", ["503"], { model: "gemini-3-pro-image" })
    const pro = () => google(gemini(state.sim.url), "gemini-3-pro-image")
    expect([await pro(), await pro(), await pro(), await pro(), await pro()]).toEqual([503, 504, 502, 500, 200])
  })

  it("a model-only script leaves other models' scripts alone, and rejects an unknown model", async () => {
    state.sim.setFaults([])
    state.sim.script("openrouter", ["402"], { model: "google/gemini-3.1-flash-image" })
    expect(await chat(openRouter(state.sim.url), "google/gemini-3-pro-image")).toBe(200)
    expect(await chat(openRouter(state.sim.url), "google/gemini-3.1-flash-image")).toBe(402)
    expect(() => state.sim.script("*", ["503"], { model: "gemini-9" })).toThrow(/unknown model "gemini-9"/)
  })

  it("batch jobs draw their fate and each request's for the job's model", async () => {
    state.sim.setFaults([])
    state.sim.script("gemini-batch", ["503"], { model: "gemini-3-pro-image" })
    const ai = gemini(state.sim.url)
    const src = [{ contents: [{ parts: [{ text: "a fox" }], role: "user" }] }]
    const flash = await ai.batches.create({ model: "gemini-3.1-flash-image", src })
    const pro = await ai.batches.create({ model: "gemini-3-pro-image", src })
    const settle = async (name: string) => {
      for (let attempt = 0; attempt < 300; attempt++) {
        const job = await ai.batches.get({ name })
        if (!/PENDING|RUNNING/.test(String(job.state))) return job.state
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      throw new Error("the batch job never finished")
    }
    expect(await settle(flash.name!)).toBe("JOB_STATE_SUCCEEDED")
    expect(await settle(pro.name!)).toBe("JOB_STATE_FAILED")
  })
})
