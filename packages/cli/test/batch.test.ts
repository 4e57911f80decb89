/**
 * Issue 11, "nothing lost, nothing paid twice": `peel batch` as a real child process killed with SIGKILL
 * at every dangerous moment — after a job is journaled but before it is sent, after it is sent but before
 * it is confirmed, right after submit, while polling, after part of the collection and in the middle of
 * it (an image written, not yet journaled). Each time a re-run finishes the work: no second job, no lost
 * image, and the simulator's ledger shows exactly one billed image per request.
 *
 * Each test has its own simulator (in this process, with a batch schedule of ~1.5 s) so the ledgers do not
 * mix and the tests run side by side; where a job must have finished upstream, a test moves that
 * simulator's clock forward (`w.later`) instead of sleeping. Crashes at exact points use `PEEL_FAILPOINT`
 * (the process SIGKILLs itself there); crashes at moments in time use `child.kill("SIGKILL")`.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { Simulator } from "@peel/simulator"
import { afterAll, describe, expect, it, vi } from "vitest"
import { peel, root, spawnPeel } from "./cli.ts"

/** Each test spawns two or three CLI processes; on a loaded machine one may take seconds to start. */
vi.setConfig({ testTimeout: 180_000 })

const simulators: Array<Simulator.Handle> = []
afterAll(async () => {
  await Promise.all(simulators.map((simulator) => simulator.stop()))
})

const startedAt = performance.now()
afterAll(() => {
  process.stderr.write(`batch kill -9 suite: ${((performance.now() - startedAt) / 1000).toFixed(1)} s\n`)
})

const scratch = () => mkdtempSync(join(tmpdir(), "peel-batch-cli-"))

interface World {
  readonly sim: Simulator.Handle
  /** Move the simulator's clock forward: its batch jobs age by `millis` at once. */
  readonly later: (millis: number) => void
  readonly env: Record<string, string>
  readonly folder: string
  readonly input: string
  readonly out: string
  readonly state: string
  readonly pipeline: string
  readonly ids: ReadonlyArray<string>
}

/** A simulator, a folder with a request file, and bulk.yaml (jobs of at most `perJob` requests). */
const world = async (count: number, perJob = 100): Promise<World> => {
  let skew = 0
  const sim = await Simulator.start({
    port: 0,
    seed: 11,
    batch: { runningAfterMs: 200, doneAfterMs: 1500 },
    clock: () => Date.now() + skew,
  })
  simulators.push(sim)
  const folder = scratch()
  const ids = Array.from({ length: count }, (_, index) => `img-${index + 1}`)
  const input = join(folder, "requests.jsonl")
  writeFileSync(
    input,
    ids.map((id) => JSON.stringify({ id, prompt: `a paper crane, ${id}`, aspectRatio: "4:3" })).join("\n"),
  )
  const pipeline = join(folder, "bulk.yaml")
  writeFileSync(
    pipeline,
    readFileSync(join(root, "pipelines", "bulk.yaml"), "utf8").replace(
      '    apiKey: "${GEMINI_API_KEY}"\n  google:',
      `    apiKey: "\${GEMINI_API_KEY}"\n    maxJobRequests: ${perJob}\n  google:`,
    ),
  )
  return {
    sim,
    later: (millis) => {
      skew += millis
    },
    env: { GEMINI_BASE_URL: sim.url, GEMINI_API_KEY: "batch-cli-key-SECRET-7" },
    folder,
    input,
    out: join(folder, "out"),
    state: join(folder, "state"),
    pipeline,
    ids,
  }
}

const submitArgs = (w: World, wait: boolean) => [
  "batch",
  "submit",
  w.pipeline,
  "--input",
  w.input,
  "--out",
  w.out,
  "--state",
  w.state,
  "--poll-every",
  "100ms",
  "--poll-max",
  "300ms",
  ...(wait ? ["--wait"] : []),
]

const jobsCreated = (w: World) =>
  w.sim.requests().filter((recorded) => recorded.method === "POST" && recorded.path.endsWith(":batchGenerateContent"))
    .length

const images = (w: World) =>
  existsSync(w.out)
    ? readdirSync(w.out)
        .filter((name) => name.endsWith(".png"))
        .sort()
    : []

/** A SIGKILLed process: no exit code, signal SIGKILL. */
const killed = (finished: { code: number | null }) => finished.code === null

/** After the re-run: every image once, one billed image per request, `jobs` jobs in all. */
const expectFinished = async (w: World, jobs: number) => {
  expect(images(w)).toEqual(w.ids.map((id) => `${id}.png`).sort())
  expect(w.sim.ledger().totals.billedImages).toBe(w.ids.length)
  expect(jobsCreated(w)).toBe(jobs)
  // The journal itself (read directly: no process to start): every job that reached the upstream collected.
  const db = new DatabaseSync(join(w.state, "journal.sqlite"), { readOnly: true })
  try {
    const sent = db.prepare("SELECT state FROM jobs WHERE state != 'unsent'").all() as Array<{ state: string }>
    expect(sent.length).toBe(jobs)
    expect(sent.every((job) => job.state === "collected")).toBe(true)
    const done = db.prepare("SELECT COUNT(*) AS n FROM requests WHERE state = 'done' AND file IS NOT NULL").get() as {
      n: number
    }
    expect(done.n).toBe(w.ids.length)
  } finally {
    db.close()
  }
}

describe.concurrent("peel batch: kill -9 at every dangerous moment, then a re-run finishes the work", () => {
  it("journaled, not yet sent (failpoint after-intent): the re-run finds no job upstream and sends one", async () => {
    const w = await world(3)
    const crashed = await peel(submitArgs(w, true), { ...w.env, PEEL_FAILPOINT: "after-intent" })
    expect(killed(crashed)).toBe(true)
    expect(jobsCreated(w)).toBe(0)
    const rerun = await peel(submitArgs(w, true), w.env)
    expect(rerun.code, rerun.stderr).toBe(0)
    expect(rerun.stderr).toContain("never reached the upstream")
    await expectFinished(w, 1)
  })

  it("sent, not yet confirmed (failpoint after-send): the re-run finds the job by display name and sends nothing", async () => {
    const w = await world(3)
    const crashed = await peel(submitArgs(w, true), { ...w.env, PEEL_FAILPOINT: "after-send" })
    expect(killed(crashed)).toBe(true)
    expect(jobsCreated(w)).toBe(1)
    const rerun = await peel(submitArgs(w, true), w.env)
    expect(rerun.code, rerun.stderr).toBe(0)
    expect(rerun.stderr).toContain("found upstream")
    await expectFinished(w, 1)
  })

  it("right after submit (SIGKILL once the job is confirmed): collect finishes it", async () => {
    const w = await world(3)
    const running = spawnPeel(submitArgs(w, true), w.env)
    expect(await running.waitForStdout(/request\(s\) sent/)).toBe(true)
    running.child.kill("SIGKILL")
    expect(killed(await running.finished)).toBe(true)
    // The job finishes upstream meanwhile; collect (not submit) picks it up from the journal.
    w.later(1500)
    const collected = await peel(["batch", "collect", "--state", w.state], w.env)
    expect(collected.code, collected.stderr).toBe(0)
    expect(collected.stdout).toContain("3 done, 0 failed")
    await expectFinished(w, 1)
  })

  it("while polling (SIGKILL mid-wait): the same submit --wait resumes the job instead of sending another", async () => {
    const w = await world(4)
    const running = spawnPeel(submitArgs(w, true), w.env)
    expect(await running.waitForStdout(/job \S+: running/)).toBe(true)
    running.child.kill("SIGKILL")
    expect(killed(await running.finished)).toBe(true)
    expect(images(w)).toEqual([])
    const rerun = await peel(submitArgs(w, true), w.env)
    expect(rerun.code, rerun.stderr).toBe(0)
    expect(rerun.stderr).toContain("4 request(s) already in a job: not sent again")
    await expectFinished(w, 1)
  })

  it("after partial collection (one job collected, the next one's first image written, not journaled)", async () => {
    const w = await world(4, 2)
    const crashed = await peel(submitArgs(w, true), { ...w.env, PEEL_FAILPOINT: "after-write:3" })
    expect(killed(crashed), `${crashed.stdout}${crashed.stderr}`).toBe(true)
    expect(images(w).length).toBe(3)
    expect(jobsCreated(w)).toBe(2)
    const collected = await peel(["batch", "collect", "--state", w.state], w.env)
    expect(collected.code, collected.stderr).toBe(0)
    // The summary covers the jobs collected now: the second one (the first was collected before the crash).
    expect(collected.stdout).toContain("2 done, 0 failed")
    await expectFinished(w, 2)
  })

  it("during collection (the first image written, not journaled): a re-run of submit --wait completes it", async () => {
    const w = await world(3)
    const crashed = await peel(submitArgs(w, true), { ...w.env, PEEL_FAILPOINT: "after-write:1" })
    expect(killed(crashed)).toBe(true)
    expect(images(w).length).toBe(1)
    const rerun = await peel(submitArgs(w, true), w.env)
    expect(rerun.code, rerun.stderr).toBe(0)
    await expectFinished(w, 1)
    // And once more: everything is done, nothing is sent or billed.
    const again = await peel(submitArgs(w, true), w.env)
    expect(again.code).toBe(0)
    expect(again.stderr).toContain("3 request(s) already done")
    await expectFinished(w, 1)
  })
})

describe("peel batch: the commands", () => {
  it("submit without --wait, status, collect, list; the cost report shows the batch price (50%)", async () => {
    const w = await world(2)
    const submitted = await peel(submitArgs(w, false), w.env)
    expect(submitted.code, submitted.stderr).toBe(0)
    expect(submitted.stdout).toMatch(
      /job (\S+) \(batches\/\S+, gemini-3-pro-image\): 2 request\(s\) sent — img-1, img-2/,
    )
    const key = /job (\S+) \(/.exec(submitted.stdout)![1]!
    const status = await peel(["batch", "status", key, "--state", w.state], w.env)
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toContain(key)
    expect(status.stdout).toMatch(/img-1\s+queued/)
    w.later(1500)
    const collected = await peel(["batch", "collect", key, "--state", w.state, "--out", w.out], w.env)
    expect(collected.code, collected.stderr).toBe(0)
    expect(collected.stdout).toContain("2 done")
    expect(collected.stdout).toMatch(/batch price: \$0\.13\d+ for 2 image\(s\), 50% of \$0\.27\d+/)
    const listed = await peel(["batch", "list", "--state", w.state], w.env)
    expect(listed.stdout).toMatch(new RegExp(`${key}\\s+batches/\\S+\\s+collected`))
    expect(images(w)).toEqual(["img-1.png", "img-2.png"])
    expect(`${submitted.stdout}${submitted.stderr}${collected.stdout}${collected.stderr}`).not.toContain("SECRET")
  })

  it("cancel: the job is cancelled upstream and its requests are reported, not lost", async () => {
    const w = await world(2)
    w.sim.script("gemini-batch", ["hang"])
    const submitted = await peel(submitArgs(w, false), w.env)
    const key = /job (\S+) \(/.exec(submitted.stdout)![1]!
    const cancelled = await peel(["batch", "cancel", key, "--state", w.state], w.env)
    expect(cancelled.code, cancelled.stderr).toBe(0)
    expect(cancelled.stdout).toMatch(new RegExp(`${key}\\s+batches/\\S+\\s+cancelled`))
    expect(w.sim.ledger().totals.billedImages).toBe(0)
  })

  it("refuses before sending anything: a pipeline without a batch channel, a bad line", async () => {
    const w = await world(1)
    const direct = await peel(
      ["batch", "submit", "pipelines/google-direct.yaml", "--input", w.input, "--state", w.state, "--out", w.out],
      w.env,
    )
    expect(direct.code).toBe(2)
    expect(direct.stderr).toContain("no batch channel")
    writeFileSync(join(w.folder, "bad.jsonl"), '{"prompt": 3}\n')
    const bad = await peel(
      ["batch", "submit", w.pipeline, "--input", join(w.folder, "bad.jsonl"), "--state", w.state, "--out", w.out],
      w.env,
    )
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("bad.jsonl:1:")
    expect(w.sim.ledger().totals.calls).toBe(0)
  })
})
