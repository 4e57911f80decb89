/**
 * The simulator's own throughput, so overhead benchmarks can show it is not the bottleneck: bounded
 * runs of Gemini `generateContent` at concurrency 64 for 1K and 4K Pro images, over real HTTP with
 * keep-alive, zero simulated latency. Prints requests/s and latency percentiles.
 */
import { Agent, request } from "node:http"
import { Simulator } from "../src/index.ts"

const total = Number(process.env.PEEL_BENCH_REQUESTS ?? 2000)
const concurrency = 64
const sim = await Simulator.start({ port: 0 })
const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
const url = new URL(sim.url)

const call = (size: string, index: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const body = JSON.stringify({
      contents: [{ role: "user", parts: [{ text: `bench ${index % 12}` }] }],
      generationConfig: {
        responseModalities: ["TEXT", "IMAGE"],
        imageConfig: { aspectRatio: "16:9", imageSize: size },
      },
    })
    const started = performance.now()
    const outgoing = request(
      {
        host: url.hostname,
        port: url.port,
        method: "POST",
        path: "/v1/models/gemini-3-pro-image:generateContent",
        agent,
        headers: { "content-type": "application/json", "x-goog-api-key": "bench" },
      },
      (response) => {
        let bytes = 0
        response.on("data", (chunk: Buffer) => {
          bytes += chunk.length
        })
        response.on("end", () =>
          response.statusCode === 200 && bytes > 0
            ? resolve(performance.now() - started)
            : reject(new Error(`status ${response.statusCode}`)),
        )
      },
    )
    outgoing.on("error", reject)
    outgoing.end(body)
  })

const run = async (size: string) => {
  const latencies: Array<number> = []
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) latencies.push(await call(size, next++))
    }),
  )
  const wall = performance.now() - started
  latencies.sort((left, right) => left - right)
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!.toFixed(1)
  return `${size.padEnd(4)}  ${String(total).padStart(8)}  ${((total / wall) * 1000).toFixed(0).padStart(10)}  ${at(0.5).padStart(8)}  ${at(0.99).padStart(8)}`
}

await run("1K") // warm-up: fills the image caches
await run("4K")
const rows = [await run("1K"), await run("4K")]
await sim.stop()
agent.destroy()
process.stdout.write(
  `simulator throughput: Gemini generateContent, concurrency ${concurrency}, zero latency\nsize  requests  requests/s  p50 ms    p99 ms\n${rows.join("\n")}\n`,
)
