/**
 * The memory benchmark's baseline: the bulk job `peel run PIPELINE --input FILE --out DIR --concurrency N`
 * does, written as a plain `@google/genai` script — read the JSONL, call generateContent with at most N
 * in flight, find the image part, decode its base64, write `DIR/ID.png`, print one JSON line per image.
 *
 * Usage: node bench/sdk-bulk.ts BASE_URL REQUESTS.jsonl OUT_DIR CONCURRENCY
 */
import { mkdirSync, readFileSync } from "node:fs"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { GoogleGenAI } from "@google/genai"
import { sdkImage } from "./shared.ts"

const [baseUrl, input, outDir, concurrencyText] = process.argv.slice(2)
if (baseUrl === undefined || input === undefined || outDir === undefined)
  throw new Error("usage: node bench/sdk-bulk.ts BASE_URL REQUESTS.jsonl OUT_DIR CONCURRENCY")
const concurrency = Number(concurrencyText ?? 16)

interface Line {
  readonly id: string
  readonly prompt: string
  readonly size?: string
  readonly aspectRatio?: string
}
const requests: Array<Line> = readFileSync(input, "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line) as Line)
mkdirSync(outDir, { recursive: true })

const sdk = new GoogleGenAI({ apiKey: "bench-key", httpOptions: { baseUrl } })
let next = 0
let failed = 0
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < requests.length) {
      const request = requests[next++]!
      const started = performance.now()
      try {
        const image = await sdkImage(sdk, request.prompt, request.size ?? "2K", request.aspectRatio ?? "1:1")
        const file = join(outDir, `${request.id}.png`)
        await writeFile(file, image.bytes)
        process.stdout.write(
          `${JSON.stringify({ id: request.id, file, bytes: image.bytes.length, latencyMs: performance.now() - started })}\n`,
        )
      } catch (error) {
        failed++
        process.stderr.write(`${request.id}: ${String(error)}\n`)
      }
    }
  }),
)
process.exitCode = failed > 0 ? 1 : 0
