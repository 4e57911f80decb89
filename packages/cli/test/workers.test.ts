/**
 * Issue 19, one input and several workers over a real Postgres: `peel run PIPELINE --input SAME.jsonl
 * --postgres URL` in several processes splits the work — each request claimed by one worker and made once,
 * every worker ends when every request is done, the totals of all workers come from the journal; a worker
 * killed with `kill -9` loses its claims when its lease expires and the others finish its requests; when
 * the server goes away mid-run the work pauses and carries on when it is back, losing no image.
 */
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Simulator } from "@peel/simulator"
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest"
import { type PostgresServer, startPostgres } from "../../testkit/src/Postgres.ts"
import { peel, root, simulatorEnv, spawnPeel, startSimulator } from "./cli.ts"

vi.setConfig({ testTimeout: 180_000 })

let server: PostgresServer
let databases = 0
const simulators: Array<Simulator.Handle> = []
beforeAll(async () => {
  server = await startPostgres()
}, 60_000)
afterAll(async () => {
  await Promise.all(simulators.map((simulator) => simulator.stop()))
  await server?.close()
})

const scratch = () => mkdtempSync(join(tmpdir(), "peel-workers-"))
const lines = (text: string) =>
  text
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { id: string; ok: boolean; skipped?: boolean; costUsd: number })
const pngs = (folder: string) =>
  readdirSync(folder)
    .filter((name) => name.endsWith(".png"))
    .map((name) => name.replace(/\.png$/, ""))

/** An input of `count` requests, a fresh database, a simulator: what one test's workers share. */
const setUp = async (count: number, latency: string, own?: PostgresServer) => {
  const sim = await Simulator.start({ port: 0, seed: 19, latency })
  simulators.push(sim)
  const folder = scratch()
  const input = join(folder, "requests.jsonl")
  const ids = Array.from({ length: count }, (_, index) => `w-${String(index + 1).padStart(2, "0")}`)
  writeFileSync(input, ids.map((id) => JSON.stringify({ id, prompt: `a paper boat, ${id}`, size: "1K" })).join("\n"))
  const url = await (own ?? server).database(`workers_${++databases}`)
  const env = { GEMINI_BASE_URL: sim.url, GEMINI_API_KEY: "workers-key-SECRET-19" }
  const args = (out: string, extra: ReadonlyArray<string> = []) => [
    "run",
    "pipelines/google-direct.yaml",
    "--input",
    input,
    "--out",
    out,
    "--postgres",
    url,
    "--json",
    ...extra,
  ]
  return { sim, folder, ids, url, env, args }
}

describe("a pipeline's state: { postgres }", () => {
  it("peel validate checks that the server answers; an unreachable one is an error that never shows the password", async () => {
    const folder = scratch()
    const pipeline = (url: string) => {
      const file = join(folder, `p-${Math.random().toString(36).slice(2)}.yaml`)
      writeFileSync(
        file,
        [
          "version: 1",
          "name: workers",
          "channels:",
          "  google: { plugin: google-ai-studio, apiKey: key-not-used }",
          "state:",
          `  postgres: "${url}"`,
          "stages:",
          "  - generate: { timeout: 5s }",
        ].join("\n"),
      )
      return file
    }
    const good = await peel(["validate", pipeline(server.url)])
    expect(good.code, good.stderr).toBe(0)
    const closed = await startPostgres()
    const port = closed.port
    await closed.close()
    const bad = await peel(["validate", pipeline(`postgres://peel:hunter2-SECRET@127.0.0.1:${port}/peel`)])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/state\.postgres: Postgres postgres:\/\/peel@127\.0\.0\.1:\d+\/peel is not reachable/)
    expect(bad.stderr + bad.stdout).not.toContain("hunter2")
    // offline, the server is not asked
    expect((await peel(["validate", "--offline", pipeline(`postgres://127.0.0.1:${port}/peel`)])).code).toBe(0)
  })
})

describe("peel keys --postgres", () => {
  it("keys made by one process are listed and revoked by another, through the server; no secret at rest", async () => {
    const url = await server.database(`keys_${++databases}`)
    const made = await peel(["keys", "create", "--name", "team-a", "--budget", "2/1d", "--rpm", "5", "--postgres", url])
    expect(made.code, made.stderr).toBe(0)
    const secret = made.stdout.trim().split("\n").at(-1)!
    expect(secret).toMatch(/^peel_/)
    const taken = await peel(["keys", "create", "--name", "team-a", "--postgres", url])
    expect(taken.code).not.toBe(0)
    const listed = await peel(["keys", "list", "--json", "--postgres", url])
    expect(listed.code, listed.stderr).toBe(0)
    expect(listed.stdout).toContain('"team-a"')
    expect(listed.stdout).not.toContain(secret)
    const revoked = await peel(["keys", "revoke", "team-a", "--postgres", url])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect((await peel(["keys", "list", "--json", "--postgres", url])).stdout).toMatch(/revoked/)
  })
})

describe("peel serve --postgres: two replicas, one key store", () => {
  it("a key made through Postgres works on both replicas at once, its spend is one account, a revoke counts on both", async () => {
    const url = await server.database(`serve_${++databases}`)
    const simulator = await startSimulator()
    onTestFinished(() => {
      simulator.process.kill()
    })
    const pipeline = join(root, "packages", "cli", "test", "fixtures", "google-only.yaml")
    const replicas = [0, 1].map(() =>
      spawnPeel(
        ["serve", pipeline, "--port", "0", "--keys", "required", "--postgres", url, "--state", scratch()],
        simulatorEnv(simulator.url),
      ),
    )
    onTestFinished(() => {
      for (const replica of replicas) if (replica.child.exitCode === null) replica.child.kill("SIGKILL")
    })
    const urls: Array<string> = []
    for (const replica of replicas) {
      expect(await replica.waitForStdout(/peel gateway listening on http:\/\/\S+\n/)).toBe(true)
      urls.push(/peel gateway listening on (http:\/\/\S+)\n/.exec(replica.output().stdout)![1]!)
    }
    const generate = (base: string, key: string | undefined, prompt: string) =>
      fetch(`${base}/v1beta/models/gemini-3-pro-image:generateContent`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(key === undefined ? {} : { "x-goog-api-key": key }) },
        body: JSON.stringify({ contents: [{ parts: [{ text: prompt }] }] }),
      })
    const made = await peel(["keys", "create", "--name", "shared", "--budget", "1/1d", "--postgres", url])
    expect(made.code, made.stderr).toBe(0)
    const secret = made.stdout.trimEnd().split("\n").at(-1)!
    let spent = 0
    for (const [index, base] of urls.entries()) {
      const answer = await generate(base, secret, `a kite ${index}`)
      expect(answer.status).toBe(200)
      spent += Number(answer.headers.get("x-peel-cost-usd"))
    }
    // one account for the key, whichever replica served it
    const listed = await peel(["keys", "list", "--json", "--postgres", url])
    expect(JSON.parse(listed.stdout.trim()).spentUsd).toBeCloseTo(spent, 5)
    expect((await peel(["keys", "revoke", "shared", "--postgres", url])).code).toBe(0)
    for (const base of urls) expect((await generate(base, secret, "after the revoke")).status).toBe(401)
  })
})

describe.concurrent("peel run --input --postgres: several workers, one input", () => {
  it("three workers split the input: each request made once, each worker ends when all are done", async () => {
    const { sim, folder, ids, env, args } = await setUp(12, "300ms")
    const outs = ["a", "b", "c"].map((name) => join(folder, name))
    const runs = await Promise.all(outs.map((out) => peel(args(out, ["--concurrency", "2"]), env)))
    for (const run of runs) expect(run.code, run.stderr).toBe(0)
    // each worker wrote its own folder: together, every id exactly once
    const made = outs.flatMap(pngs)
    expect(made.sort()).toEqual([...ids].sort())
    // (how the work splits depends on when each worker starts: one that starts last may find nothing left)
    expect(sim.ledger().totals.billedImages).toBe(ids.length)
    // every worker reports the totals of all workers, from the journal
    for (const run of runs) expect(run.stderr).toMatch(/journal: 12 of 12 done, 0 failed/)
    // the URL's secrets never printed (there are none here, but the URL itself stays out of the output)
    for (const run of runs) expect(run.stderr).not.toContain("SECRET")
  })

  it("a worker killed with kill -9: its requests are claimed again after its lease and finished by the others", async () => {
    const { sim, folder, ids, env, args } = await setUp(18, "400ms")
    const out = join(folder, "out")
    const workerArgs = args(out, ["--concurrency", "3", "--lease", "2s"])
    const doomed = spawnPeel(workerArgs, env)
    expect(await doomed.waitForStdout(/("ok":true[\s\S]*){2}/)).toBe(true)
    const others = [peel(workerArgs, env), peel(workerArgs, env)]
    doomed.child.kill("SIGKILL")
    const killed = await doomed.finished
    expect(killed.code).toBeNull()
    const runs = await Promise.all(others)
    for (const run of runs) expect(run.code, run.stderr).toBe(0)
    // every request on disk once; the survivors' totals cover the dead worker's work too
    expect(pngs(out).sort()).toEqual([...ids].sort())
    for (const run of runs) expect(run.stderr).toMatch(/journal: 18 of 18 done, 0 failed/)
    // billed: one per request, plus at most what the killed worker had in flight (answers lost with it)
    const billed = sim.ledger().totals.billedImages
    expect(billed).toBeGreaterThanOrEqual(ids.length)
    expect(billed).toBeLessThanOrEqual(ids.length + 3)
    // what each survivor made or found: together with what the killed one reported, each id once
    const reported = [...runs.flatMap((run) => lines(run.stdout)), ...lines(killed.stdout)].filter(
      (line) => line.ok && line.skipped !== true,
    )
    expect(new Set(reported.map((line) => line.id)).size).toBe(reported.length)
  })

  it("Postgres stopped mid-run and started again: the work pauses, carries on, and no image is lost", async () => {
    // its own server: the other tests' keeps running
    const own = await startPostgres()
    onTestFinished(() => own.close())
    const { sim, folder, ids, env, args } = await setUp(10, "200ms", own)
    const out = join(folder, "out")
    const worker = spawnPeel(args(out, ["--concurrency", "2"]), env)
    expect(await worker.waitForStdout(/("ok":true[\s\S]*){3}/)).toBe(true)
    await own.stop()
    // the worker notices (once) and waits
    await vi.waitFor(
      () => {
        if (!/paused and retried/.test(worker.output().stderr)) throw new Error("not paused yet")
      },
      { timeout: 60_000, interval: 100 },
    )
    await own.start()
    const finished = await worker.finished
    expect(finished.code, finished.stderr).toBe(0)
    expect(finished.stderr).toMatch(/Postgres answers again/)
    expect(pngs(out).sort()).toEqual([...ids].sort())
    expect(finished.stderr).toMatch(/journal: 10 of 10 done, 0 failed/)
    expect(sim.ledger().totals.billedImages).toBe(ids.length)
  })
})
