/** Routing by urgency: batch work to batch channels (real-time ones after them), real-time work never to a batch-only channel, and a warning when batch work has no batch channel. */

import type { Channel } from "@peel/contract/Channel"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Errors } from "../src/index.ts"
import * as Plan from "../src/plan/Plan.ts"

const channel = (name: string, batch: boolean): Channel => ({
  name,
  plugin: name,
  capabilities: { models: ["gemini-3-pro-image"], ...(batch ? { batch: true } : {}) },
  price: () => (batch ? 0.067 : 0.134),
  generate: () => Effect.fail(new Errors.Unsupported({ channel: name, message: "test" })),
})

const both = new Map([
  ["google", channel("google", false)],
  ["batch", channel("batch", true)],
])
const plan = (urgency: "batch" | "realtime" | undefined, channels = both, unfinished?: Plan.Unfinished) => {
  const started = Plan.start(
    { prompt: "a fox", ...(urgency === undefined ? {} : { urgency }) },
    Plan.defaultLimits,
    "2026-11-26",
  )
  if (!("adjustments" in started)) throw started
  return Plan.finish({ ...started, ...(unfinished === undefined ? {} : { unfinished }) }, channels, Plan.defaultLimits)
}

describe("Plan: urgency", () => {
  it("sends batch work to the batch channel first, real-time channels after it", () => {
    const planned = plan("batch")
    expect(planned.candidates).toEqual(["batch", "google"])
    expect(planned.urgency).toBe("batch")
    expect(planned.unfinished).toEqual(Plan.defaultUnfinished)
    expect(planned.adjustments).toEqual([])
  })

  it("keeps real-time work off batch-only channels, with the reason", () => {
    for (const urgency of ["realtime", undefined] as const) {
      const planned = plan(urgency)
      expect(planned.candidates).toEqual(["google"])
      expect(planned.refused).toEqual([{ channel: "batch", reason: Plan.batchOnlyReason }])
      expect(planned.urgency).toBeUndefined()
    }
  })

  it("warns when batch work has no batch channel: made in real time at the standard price", () => {
    const planned = plan("batch", new Map([["google", channel("google", false)]]))
    expect(planned.candidates).toEqual(["google"])
    expect(planned.urgency).toBe("realtime")
    expect(planned.adjustments).toEqual([
      { field: "urgency", from: "batch", to: "realtime", reason: Plan.noBatchChannelReason },
    ])
  })

  it("carries the pipeline's choice for unfinished batch work", () => {
    expect(plan("batch", both, { action: "realtime", resubmits: 0 }).unfinished).toEqual({
      action: "realtime",
      resubmits: 0,
    })
  })
})
