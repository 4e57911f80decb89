/** Shared set-up for the simulator's own tests: one simulator per file, reset between tests. */
import { GoogleGenAI } from "@google/genai"
import OpenAI from "openai"
import { afterAll, beforeAll, beforeEach } from "vitest"
import { Simulator } from "../src/index.ts"

export const useSimulator = (options: Simulator.Options = {}) => {
  const state: { sim: Simulator.Handle } = { sim: undefined as never }
  beforeAll(async () => {
    state.sim = await Simulator.start({ port: 0, ...options })
  })
  afterAll(() => state.sim.stop())
  beforeEach(() => state.sim.reset())
  return state
}

export const gemini = (url: string, apiVersion?: string) =>
  new GoogleGenAI({
    apiKey: "test-key",
    httpOptions: { baseUrl: url, ...(apiVersion === undefined ? {} : { apiVersion }) },
  })

export const vertexProject = (url: string) =>
  new GoogleGenAI({
    vertexai: true,
    project: "p1",
    location: "global",
    httpOptions: { baseUrl: url },
    googleAuthOptions: {
      authClient: { getRequestHeaders: async () => new Headers({ Authorization: "Bearer test-token" }) } as never,
    },
  })

export const vertexExpress = (url: string) =>
  new GoogleGenAI({ vertexai: true, apiKey: "test-express-key", httpOptions: { baseUrl: url } })

export const openRouter = (url: string) => new OpenAI({ apiKey: "sk-or-test", baseURL: `${url}/api/v1`, maxRetries: 0 })
export const proxyChat = (url: string) => new OpenAI({ apiKey: "sk-proxy-test", baseURL: `${url}/v1`, maxRetries: 0 })

export const imageRequest = (aspectRatio = "1:1", imageSize = "1K") => ({
  responseModalities: ["TEXT", "IMAGE"],
  imageConfig: { aspectRatio, imageSize },
})

/** The final (non-thought) image part's bytes. */
export const finalImage = (response: {
  candidates?: Array<{ content?: { parts?: Array<{ thought?: boolean; inlineData?: { data?: string } }> } }>
}) => {
  const part = response.candidates?.[0]?.content?.parts
    ?.filter((candidate) => candidate.thought !== true && candidate.inlineData !== undefined)
    .at(-1)
  return Buffer.from(part?.inlineData?.data ?? "", "base64")
}
