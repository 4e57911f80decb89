/** Made-up journal records and outcomes, shaped like the runner's, for the observers. */
import type { Attempt, Plan, Runner } from "@peel/core"

export const plan = (id: string, overrides: Partial<Plan.Plan> = {}): Plan.Plan =>
  ({
    id,
    request: { id, prompt: "a secret prompt that must never be logged", use: "blog" },
    channelRequest: {},
    model: "gemini-3-pro-image",
    size: "2K",
    aspectRatio: "16:9",
    candidates: ["google", "vertex"],
    refused: [],
    limits: { maxPromptChars: 32_000 },
    adjustments: [],
    promptHash: `hash-${id}`,
    ...overrides,
  }) as unknown as Plan.Plan

export const attempt = (overrides: Partial<Attempt.Attempt> = {}): Attempt.Attempt => ({
  channel: "google",
  model: "gemini-3-pro-image",
  size: "2K",
  startedAt: Date.parse("2026-11-26T10:00:00.000Z"),
  latencyMs: 1200,
  outcome: "ok",
  costUsd: 0.134,
  try: 1,
  ...overrides,
})

type Ended = Parameters<NonNullable<Runner.Observer["done"]>>[1]

export const done = (id: string, attempts: ReadonlyArray<Attempt.Attempt>, latencyMs = 1500): Ended =>
  ({
    _tag: "Done",
    result: {
      id,
      bytes: new Uint8Array([0x89, 0x50, 0x4e, 0x47]),
      mimeType: "image/png",
      width: 2752,
      height: 1536,
      model: "gemini-3-pro-image",
      channel: attempts.at(-1)?.channel ?? "google",
      size: "2K",
      aspectRatio: "16:9",
      cached: false,
      placeholder: false,
      costUsd: attempts.reduce((sum, a) => sum + a.costUsd, 0),
      latencyMs,
      attempts,
      promptHash: `hash-${id}`,
    },
  }) as unknown as Ended

export const failed = (id: string, attempts: ReadonlyArray<Attempt.Attempt>, tag = "Unavailable"): Ended =>
  ({
    _tag: "Failed",
    failure: {
      id,
      error: { _tag: tag, message: `${tag}: upstream said no` },
      attempts,
      costUsd: attempts.reduce((sum, a) => sum + a.costUsd, 0),
      latencyMs: 2000,
    },
  }) as unknown as Ended
