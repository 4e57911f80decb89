/**
 * The ledger's memory: `PEEL_BENCH_LEDGER_CALLS` (default 60,000) Gemini `generateContent` calls for 1K
 * Pro images, and the simulator's live heap (after a full GC) at a quarter, half and all of them — with
 * the default bounded ledger (last 10,000 calls and bills) and with an effectively unbounded one (what
 * the ledger was before it was bounded). Totals must agree. In-process client, concurrency 64.
 *
 * Run: `node bench/ledger.ts` (in this package).
 */
import { Agent, request } from "node:http"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Simulator } from "../src/index.ts"

setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void
const total = Number(process.env.PEEL_BENCH_LEDGER_CALLS ?? 60_000)
const concurrency = 64
const marks = [Math.round(total / 4), Math.round(total / 2), total]

const liveHeapMb = (): number => {
  gc()
  return process.memoryUsage().heapUsed / 1048576
}

const run = async (ledgerLimit: number) => {
  const sim = await Simulator.start({ port: 0, ledgerLimit })
  const url = new URL(sim.url)
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const call = (index: number) =>
    new Promise<void>((resolve, reject) => {
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
          response.resume()
          response.on("end", () =>
            response.statusCode === 200 ? resolve() : reject(new Error(`${response.statusCode}`)),
          )
        },
      )
      outgoing.on("error", reject)
      outgoing.end(
        JSON.stringify({
          contents: [{ role: "user", parts: [{ text: `bench ${index % 12}` }] }],
          generationConfig: {
            responseModalities: ["TEXT", "IMAGE"],
            imageConfig: { aspectRatio: "1:1", imageSize: "1K" },
          },
        }),
      )
    })
  const heap = [liveHeapMb()]
  let done = 0
  for (const mark of marks) {
    let next = done
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < mark) await call(next++)
      }),
    )
    done = mark
    heap.push(liveHeapMb())
  }
  const ledger = sim.ledger()
  agent.destroy()
  await sim.stop()
  return { heap, ledger }
}

const bounded = await run(10_000)
const unbounded = await run(Number.MAX_SAFE_INTEGER)
if (JSON.stringify(bounded.ledger.totals) !== JSON.stringify(unbounded.ledger.totals))
  throw new Error(
    `totals differ: ${JSON.stringify(bounded.ledger.totals)} vs ${JSON.stringify(unbounded.ledger.totals)}`,
  )
const row = (name: string, result: typeof bounded) =>
  `${name.padEnd(22)}${result.heap.map((mb) => mb.toFixed(1).padStart(9)).join("")}${String(result.ledger.calls.length).padStart(10)}`
process.stdout.write(
  `simulator ledger: live heap MB after a full GC, ${total.toLocaleString("en-US")} 1K calls; totals ${JSON.stringify(bounded.ledger.totals)} in both\n` +
    `ledger                ${["start", ...marks.map((mark) => mark.toLocaleString("en-US"))].map((label) => label.padStart(9)).join("")}  retained\n` +
    `${row("bounded (10,000)", bounded)}\n${row("unbounded", unbounded)}\n`,
)
