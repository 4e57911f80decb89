import { describe, expect, it } from "vitest"
import * as Progress from "../src/Progress.ts"
import { attempt, plan } from "./fixtures.ts"

type Outcome = { readonly _tag: "Done" | "Failed" | "Skipped"; readonly cost: number; readonly channel?: string }

const setup = (total: number | undefined, enabled = true) => {
  let time = 0
  const written: Array<string> = []
  const progress = Progress.make<Outcome>({
    total,
    enabled,
    costOf: (outcome) => outcome.cost,
    channelOf: (outcome) => outcome.channel,
    write: (text) => written.push(text),
    columns: () => 200,
    now: () => time,
    intervalMs: 60_000,
  })
  return {
    progress,
    written,
    advance: (ms: number) => {
      time += ms
    },
  }
}

describe("Progress", () => {
  it("draws a bulk bar: done/failed/total, rate, ETA, dollars spent and per-channel counts", () => {
    const { progress, written, advance } = setup(10)
    advance(2_000)
    progress.update({ _tag: "Done", cost: 0.134, channel: "google" })
    progress.update({ _tag: "Done", cost: 0.05, channel: "proxy" })
    progress.update({ _tag: "Done", cost: 0.134, channel: "google" })
    progress.update({ _tag: "Failed", cost: 0 })
    expect(progress.render()).toBe(
      "[██████████░░░░░░░░░░░░░░] 4/10  ok 3  failed 1  2.0/s  ETA 0:03  $0.3180  google 2 · proxy 1",
    )
    expect(written.at(-1)).toBe(`\r\x1b[K${progress.render()}`)
    expect(progress.counts()).toEqual({ done: 3, failed: 1, skipped: 0, spent: 0.318 })
    progress.finish()
    expect(written.at(-1)).toBe("\n")
  })

  it("draws a spinner for one request with the elapsed time and the attempt under way", () => {
    const { progress, advance } = setup(undefined)
    advance(1_500)
    expect(progress.render()).toBe("⠋ 1.5s  first attempt")
    progress.observer.attempt?.(
      { id: "a", plan: plan("a") },
      attempt({ outcome: "RateLimited", status: 429, channel: "google" }),
    )
    advance(12_000)
    expect(progress.render()).toBe("⠋ 13.5s  gemini-3-pro-image 2K  attempt 2 after google: RateLimited 429")
  })

  it("draws nothing when disabled (not a terminal, or --json)", () => {
    const { progress, written } = setup(5, false)
    progress.update({ _tag: "Done", cost: 1, channel: "google" })
    progress.clear()
    progress.finish()
    expect(written).toEqual([])
    expect(progress.counts().done).toBe(1)
  })
})
