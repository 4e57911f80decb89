/**
 * Two gateway replicas, one virtual key (issue 19), against `peel simulate` and a real redis-server, each
 * replica a real `peel serve` process (both on one `--state` folder: the keys are in its SQLite file):
 *
 * 1. **rpm across replicas**: a key with `rpm 5`; a client sends one request a second, alternating between
 *    replica A and B, for `PEEL_BENCH_SECONDS` (default 125 s: two full minutes and a bit), with the `openai`
 *    SDK and no retries. Prints the answers, the refusals (429 `RateLimitError`, with their Retry-After),
 *    the answers in each minute and the most answers in any 60 s (by the time each request was sent) —
 *    for two replicas sharing Redis (`--redis URL`) and, at the same time, two replicas on their own memory
 *    rate limits (no `--redis`) and two replicas each given its own redis-server (`apart`: what replicas
 *    with their own local state are, the key spend ledger included).
 * 2. **A budget across replicas**: a key whose budget is 3.5 images at the pipeline's price; 20 requests
 *    at once, 10 through each replica, with `@google/genai`; `PEEL_BENCH_BUDGET_RUNS` rounds (default 5), a
 *    fresh key each. Prints the images made, the refusals (429) and the upstream's bill against the budget,
 *    for the same two pairs (without Redis the key spend ledger is the state folder's SQLite file, which
 *    the two replicas on one machine share too).
 *
 * Real time by nature (part 1 is two minutes; both pairs run it at once). Needs `redis-server`.
 *
 * Run: `npx pnpm --filter @peel/cli exec node bench/replicas.ts` (`PEEL_BENCH_PARTS=1,2`).
 */
import { spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ApiError, GoogleGenAI } from "@google/genai"
import OpenAI from "openai"
import { startRedis } from "../../testkit/src/RedisServer.ts"
import { binPath } from "./shared.ts"
import { startSimulatorWith } from "./simulator-process.ts"

const parts = new Set((process.env.PEEL_BENCH_PARTS ?? "1,2").split(",").map(Number))
const seconds = Number(process.env.PEEL_BENCH_SECONDS ?? 125)
const budgetRuns = Number(process.env.PEEL_BENCH_BUDGET_RUNS ?? 5)
const pipeline = new URL("../test/fixtures/google-only.yaml", import.meta.url).pathname
const model = "gemini-3-pro-image"
const adminKey = `bench-admin-${process.pid}`
const rpm = 5

const [redis, otherRedis] = await Promise.all([startRedis(), startRedis()])
const simulator = await startSimulatorWith(["--latency", "200ms", "--seed", "19"])
const children: Array<ReturnType<typeof spawn>> = []

/** `peel serve` with `flags`; resolves with its URL once it prints its first line. */
const serve = (flags: ReadonlyArray<string>) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [binPath, "serve", pipeline, "--port", "0", "--keys", "required", "--admin-key-env", "PEEL_ADMIN_KEY", ...flags],
      {
        env: {
          PATH: process.env.PATH,
          GEMINI_BASE_URL: simulator.url,
          GEMINI_API_KEY: "bench-upstream-key",
          PEEL_ADMIN_KEY: adminKey,
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    )
    children.push(child)
    let stdout = ""
    let stderr = ""
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
      if (stderr.length > 20_000) stderr = stderr.slice(-10_000)
    })
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
      const found = /peel gateway listening on (http:\/\/\S+)\n/.exec(stdout)
      if (found !== null) resolve(found[1]!)
    })
    child.once("exit", (code) => reject(new Error(`peel serve exited (${code}): ${stderr.slice(-1000)}`)))
  })

type Mode = "redis" | "memory" | "apart"
const modes: ReadonlyArray<Mode> = ["redis", "memory", "apart"]

/** Each mode's two replicas (URLs), all started at once. */
const pairs = new Map<Mode, readonly [string, string]>(
  await Promise.all(
    modes.map(async (mode) => {
      const state = ["--state", join(mkdtempSync(join(tmpdir(), `peel-bench-replicas-${mode}-`)), "state")]
      const flags = (replica: number) =>
        mode === "memory"
          ? state
          : [...state, "--redis", mode === "apart" && replica === 1 ? otherRedis.url : redis.url]
      return [mode, await Promise.all([serve(flags(0)), serve(flags(1))])] as const
    }),
  ),
)

const createKey = async (url: string, body: { name: string; rpm?: number; budget?: string }) => {
  const response = await fetch(`${url}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  })
  if (response.status !== 201) throw new Error(`POST /admin/keys: ${response.status} ${await response.text()}`)
  return ((await response.json()) as { key: string }).key
}

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, millis)))

/** One request a second, alternating between the pair; each answer with the time its request was sent. */
const steady = async (mode: Mode) => {
  const [a, b] = pairs.get(mode)!
  const key = await createKey(a, { name: `rpm-${mode}`, rpm, budget: "1000/1d" })
  const clients = [a, b].map((url) => new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 }))
  const started = performance.now()
  const pending: Array<Promise<{ sentMs: number; replica: number; ok: boolean; retryAfter?: number }>> = []
  for (let index = 0; index < seconds; index++) {
    await sleep(started + index * 1000 - performance.now())
    const sentMs = performance.now() - started
    const replica = index % 2
    pending.push(
      clients[replica]!.images.generate({ model, prompt: `rpm bench ${mode} ${index}`, quality: "low" }).then(
        () => ({ sentMs, replica, ok: true }),
        (error: unknown) => {
          if (!(error instanceof OpenAI.RateLimitError)) throw error
          return { sentMs, replica, ok: false, retryAfter: Number(error.headers.get("retry-after")) }
        },
      ),
    )
  }
  const answers = await Promise.all(pending)
  const ok = answers.filter((answer) => answer.ok)
  const perMinute = Array.from(
    { length: Math.ceil(seconds / 60) },
    (_, minute) => ok.filter((answer) => Math.floor(answer.sentMs / 60_000) === minute).length,
  )
  const mostIn60s = Math.max(
    0,
    ...ok.map(
      (first) => ok.filter((other) => other.sentMs >= first.sentMs && other.sentMs < first.sentMs + 60_000).length,
    ),
  )
  const retryAfters = answers.flatMap((answer) => (answer.retryAfter === undefined ? [] : [answer.retryAfter]))
  const byReplica = [0, 1].map((replica) => ok.filter((answer) => answer.replica === replica).length)
  return (
    `  ${mode.padEnd(6)} ${answers.length} requests in ${seconds} s: ${ok.length} answered (A ${byReplica[0]}, B ${byReplica[1]}), ` +
    `${answers.length - ok.length} refused 429${retryAfters.length === 0 ? "" : ` (Retry-After ${Math.min(...retryAfters)}–${Math.max(...retryAfters)} s)`}; ` +
    `answers per minute ${perMinute.join(", ")}; most in any 60 s: ${mostIn60s} (key rpm ${rpm})`
  )
}

const price = async (url: string) => {
  const probe = await createKey(url, { name: `probe-${Date.now()}` })
  const answer = await new GoogleGenAI({ apiKey: probe, httpOptions: { baseUrl: url } }).models.generateContent({
    model,
    contents: "the price of one",
  })
  return Number(answer.sdkHttpResponse?.headers?.["x-peel-cost-usd"])
}

const budgets = async (mode: Mode) => {
  const [a, b] = pairs.get(mode)!
  const each = await price(a)
  const limitUsd = Number((each * 3.5).toFixed(6))
  const lines: Array<string> = []
  let held = 0
  let worst = 0
  for (let run = 0; run < budgetRuns; run++) {
    const key = await createKey(run % 2 === 0 ? a : b, { name: `budget-${mode}-${run}`, budget: `${limitUsd}/1d` })
    const clients = [a, b].map((url) => new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: url } }))
    const before = (await simulator.ledger()).totals.billedUsd
    const settled = await Promise.allSettled(
      Array.from({ length: 20 }, (_, index) =>
        clients[index % 2]!.models.generateContent({ model, contents: `budget bench ${mode} ${run}/${index}` }),
      ),
    )
    const billed = (await simulator.ledger()).totals.billedUsd - before
    const made = settled.filter((result) => result.status === "fulfilled").length
    const refused = settled.filter(
      (result) => result.status === "rejected" && result.reason instanceof ApiError && result.reason.status === 429,
    ).length
    if (billed <= limitUsd + 1e-9) held++
    worst = Math.max(worst, billed)
    lines.push(`    run ${run + 1}: ${made} images, ${refused} refused 429, billed $${billed.toFixed(4)}`)
  }
  return [
    `  ${mode.padEnd(6)} budget $${limitUsd.toFixed(4)} (3.5 images at $${each.toFixed(6)}), 20 requests at once through both: held in ${held}/${budgetRuns} runs, most billed $${worst.toFixed(4)}`,
    ...lines,
  ].join("\n")
}

try {
  if (parts.has(1)) {
    console.log(
      `1. rpm across replicas: key rpm ${rpm}, one request a second alternating A/B for ${seconds} s (openai SDK)`,
    )
    for (const line of await Promise.all(modes.map(steady))) console.log(line)
  }
  if (parts.has(2)) {
    console.log("2. A budget across replicas: 20 requests at once, 10 through each replica (@google/genai)")
    for (const mode of modes) console.log(await budgets(mode))
  }
} finally {
  for (const child of children) child.kill("SIGTERM")
  await simulator.stop()
  await Promise.all([redis.close(), otherRedis.close()])
}
