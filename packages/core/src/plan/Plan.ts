/**
 * The plan: what routing decided for one request — model, size, aspect ratio, candidate channels and
 * limits — resolved once, immutable, and clamped to what the catalog says the model can make, with every
 * change recorded as an {@link Adjustment}. Planning calls nobody: `peel run --dry-run` prints plans, and
 * cost estimates price them.
 *
 * Routing stages work on a {@link Draft} (explicit request fields already in it); {@link settle} fills
 * Peel's defaults and clamps; {@link finish} checks every candidate channel once and turns the draft into
 * a {@link Plan}. No other code fills defaults or refuses requests.
 *
 * @since 0.2.0
 */
import type { Adjustment } from "@peel/contract/Attempt"
import { type AspectRatio, findModel, resolveModel, retirementWarning, type Size, Sizes } from "@peel/contract/Catalog"
import { type Channel, type ChannelRequest, type ReferenceImage, refusal } from "@peel/contract/Channel"
import { InvalidRequest } from "@peel/contract/Errors"
import type { ImageInput, ImageRequest } from "@peel/contract/Request"
import { canonicalHash, hashOf, normalizePrompt } from "../internal/hash.ts"
import { imageHash } from "./Inputs.ts"

/** Peel's defaults when neither the request nor a stage decides. @category defaults */
export const defaults = { model: "gemini-3-pro-image", size: "1K", aspectRatio: "1:1" } as const satisfies {
  readonly model: string
  readonly size: Size
  readonly aspectRatio: AspectRatio
}

/** Limits a pipeline sets on every request (top-level `limits`). @category model */
export interface Limits {
  /** Longest prompt accepted, in characters; longer ones are refused before any call. */
  readonly maxPromptChars: number
}

/** Default limits: 32,000 characters is ~8,000 tokens, ~$0.016 of Pro input — far past the 20–200 words that work best. @category defaults */
export const defaultLimits: Limits = { maxPromptChars: 32_000 }

/** A plan in the making, passed through the routing stages. @category model */
export interface Draft {
  readonly id: string
  readonly request: ImageRequest
  readonly model?: string | undefined
  readonly size?: Size | undefined
  readonly aspectRatio?: AspectRatio | undefined
  /** Channel names in the order to try; every channel in declaration order when unset. */
  readonly candidates?: ReadonlyArray<string> | undefined
  readonly adjustments: ReadonlyArray<Adjustment>
  /** What to do with batch work that did not come back (set by `select`'s `batch` block). */
  readonly unfinished?: Unfinished | undefined
}

/**
 * What happens to `urgency: batch` work that did not come back — its job expired or failed, or the
 * request failed inside it with an error another try might not have: `resubmit` it in a new job (at most
 * `resubmits` times, then report), fall back to the plan's `realtime` channels, or `report` it as failed.
 *
 * @category model
 */
export interface Unfinished {
  readonly action: "resubmit" | "realtime" | "report"
  readonly resubmits: number
}

/** Resubmit once, then report. @category defaults */
export const defaultUnfinished: Unfinished = { action: "resubmit", resubmits: 1 }

/** Why a batch-only channel cannot take real-time work. @category planning */
export const batchOnlyReason = "takes only urgency: batch work (a batch job, half price)"

/** The warning for batch work no channel of the pipeline can take in a batch. @category planning */
export const noBatchChannelReason =
  "urgency: batch, but no channel of this pipeline takes batch work (add a google-batch channel): made in real time at the standard price"

/** A channel left out of a plan, and why. @category model */
export interface Refusal {
  readonly channel: string
  readonly reason: string
}

/** The resolved, immutable plan of one request. @category model */
export interface Plan {
  readonly id: string
  readonly request: ImageRequest
  /** What every candidate channel is asked for. */
  readonly channelRequest: ChannelRequest
  readonly model: string
  readonly size: Size
  readonly aspectRatio: AspectRatio
  /** Channels that can serve the request, in the order to try. */
  readonly candidates: ReadonlyArray<string>
  /** Channels that were considered and cannot serve it (checked once, here). */
  readonly refused: ReadonlyArray<Refusal>
  readonly limits: Limits
  readonly adjustments: ReadonlyArray<Adjustment>
  /** SHA-256 of the canonical request (normalised prompt, model, size, aspect ratio). */
  readonly promptHash: string
  /**
   * `batch` when the request asked for batch work and a batch channel can take it: the batch channels come
   * first in `candidates`, the real-time ones after them take what a batch does not bring back.
   */
  readonly urgency?: "realtime" | "batch" | undefined
  /** What to do with batch work that did not come back. */
  readonly unfinished?: Unfinished | undefined
  /** Made by a fallback alternative (its attempts are marked so in the journal). */
  readonly fallback?: boolean | undefined
  /** The share of the request's deadline this plan may use (a fallback stage keeps the rest for itself). */
  readonly deadlineShare?: number | undefined
}

/**
 * The id a request is known by: its own `id`, else a hash of what it asks for. Stable across runs, so a
 * re-run of a bulk file finds the images it already made.
 *
 * @category ids
 */
export const requestId = (request: ImageRequest): string =>
  request.id ??
  `img-${hashOf([
    normalizePrompt(request.prompt),
    request.use ?? null,
    request.priority ?? null,
    request.model ?? null,
    request.size ?? null,
    request.aspectRatio ?? null,
    // reference images and seed enter the id only when given, so ids of text-only requests never change
    ...(request.images === undefined && request.seed === undefined
      ? []
      : [(request.images ?? []).map(inputKey), request.seed ?? null]),
  ]).slice(0, 20)}`

/** A reference image as written, for ids: path or URL as is, inline data by its hash. */
const inputKey = (input: ImageInput): string =>
  typeof input === "string"
    ? input.startsWith("data:")
      ? hashOf(input)
      : input
    : "path" in input
      ? input.path
      : "url" in input
        ? input.url
        : "data" in input
          ? hashOf(input.data)
          : imageHash({ bytes: input.bytes, mimeType: "" })

/** A model id as written → Google's current id, with an adjustment when it was an alias of a retired one. */
const currentModel = (
  written: string,
  today: string,
): { readonly model: string; readonly adjustment?: Adjustment | undefined } => {
  const resolved = resolveModel(written)
  const warning = retirementWarning(resolved, today)
  const successor = findModel(resolved)?.successor
  if (warning !== undefined && successor !== undefined)
    return { model: successor, adjustment: { field: "model", from: written, to: successor, reason: warning } }
  return { model: resolved }
}

/**
 * Start a draft from a request: limits checked, explicit fields in place (a retired model id mapped to
 * its successor, with the reason).
 *
 * @category planning
 */
export const start = (
  request: ImageRequest,
  limits: Limits,
  today: string,
  id: string = requestId(request),
): Draft | InvalidRequest => {
  if (request.prompt.trim().length === 0)
    return new InvalidRequest({ message: `${id}: prompt must not be empty or only whitespace` })
  if (request.prompt.length > limits.maxPromptChars)
    return new InvalidRequest({
      message: `${id}: prompt is ${request.prompt.length} characters; this pipeline accepts at most ${limits.maxPromptChars} (limits.maxPromptChars)`,
    })
  const model = request.model === undefined ? undefined : currentModel(request.model, today)
  return {
    id,
    request,
    model: model?.model,
    size: request.size,
    aspectRatio: request.aspectRatio,
    adjustments: model?.adjustment === undefined ? [] : [model.adjustment],
  }
}

/** Set a routed model (a stage's choice), mapping a retired id like an explicit one. @category planning */
export const withModel = (draft: Draft, written: string, today: string): Draft => {
  const model = currentModel(written, today)
  return {
    ...draft,
    model: model.model,
    adjustments: model.adjustment === undefined ? draft.adjustments : [...draft.adjustments, model.adjustment],
  }
}

/**
 * Fill Peel's defaults and clamp the size to what the model makes (a 2.5 Flash "4K" is a 1K image: the
 * plan says 1K, and why). Idempotent.
 *
 * @category planning
 */
export const settle = (
  draft: Draft,
): Draft & { readonly model: string; readonly size: Size; readonly aspectRatio: AspectRatio } => {
  const model = draft.model ?? defaults.model
  const wanted = draft.size ?? defaults.size
  const aspectRatio = draft.aspectRatio ?? defaults.aspectRatio
  const sizes = findModel(model)?.sizes
  if (sizes === undefined || sizes.includes(wanted)) return { ...draft, model, size: wanted, aspectRatio }
  const rank = (size: Size) => Sizes.indexOf(size)
  const size = [...sizes].reverse().find((candidate) => rank(candidate) <= rank(wanted)) ?? sizes[0]!
  return {
    ...draft,
    model,
    size,
    aspectRatio,
    adjustments: [
      ...draft.adjustments,
      { field: "size", from: wanted, to: size, reason: `${model} makes only ${sizes.join(", ")} images` },
    ],
  }
}

/** The request every candidate channel is asked for. @category planning */
export const channelRequestOf = (
  draft: Draft & { readonly model: string; readonly size: Size; readonly aspectRatio: AspectRatio },
  images: ReadonlyArray<ReferenceImage> = [],
): ChannelRequest => ({
  id: draft.id,
  prompt: draft.request.prompt,
  model: draft.model,
  size: draft.size,
  aspectRatio: draft.aspectRatio,
  ...(images.length === 0 ? {} : { images }),
  ...(draft.request.seed === undefined ? {} : { seed: draft.request.seed }),
  ...(draft.request.imageOnly === true ? { imageOnly: true } : {}),
  ...(draft.request.variant === undefined ? {} : { variant: draft.request.variant }),
  ...(draft.request.providerOptions === undefined ? {} : { providerOptions: draft.request.providerOptions }),
})

/**
 * The cache key of a channel request: the canonical hash of prompt, model, size and aspect ratio, and —
 * only when present, so older keys stay valid — the reference images' content hashes, seed and image-only.
 */
const promptHashOf = (request: ChannelRequest): string => {
  const base = canonicalHash(request)
  const images = request.images ?? []
  if (images.length === 0 && request.seed === undefined && request.imageOnly !== true) return base
  return hashOf([base, images.map(imageHash), request.seed ?? null, request.imageOnly === true])
}

/**
 * Settle the draft and check each candidate once: channels that cannot serve the request are left out,
 * with the reason.
 *
 * @category planning
 */
export const finish = (
  draft: Draft,
  channels: ReadonlyMap<string, Channel>,
  limits: Limits,
  images: ReadonlyArray<ReferenceImage> = [],
): Plan => {
  const settled = settle(draft)
  const channelRequest = channelRequestOf(settled, images)
  const names = settled.candidates ?? [...channels.keys()]
  const candidates: Array<string> = []
  const refused: Array<Refusal> = []
  for (const name of names) {
    const channel = channels.get(name)
    if (channel === undefined) {
      refused.push({ channel: name, reason: "not in this run (an optional channel left out, its variables unset)" })
      continue
    }
    const reason =
      refusal(channel, channelRequest) ??
      (channel.capabilities.batch === true && settled.request.urgency !== "batch" ? batchOnlyReason : undefined)
    if (reason === undefined) candidates.push(name)
    else refused.push({ channel: name, reason })
  }
  const wantsBatch = settled.request.urgency === "batch"
  const batchChannels = candidates.filter((name) => channels.get(name)?.capabilities.batch === true)
  const inBatch = wantsBatch && batchChannels.length > 0
  return {
    id: settled.id,
    request: settled.request,
    channelRequest,
    model: settled.model,
    size: settled.size,
    aspectRatio: settled.aspectRatio,
    candidates: inBatch
      ? [...batchChannels, ...candidates.filter((name) => !batchChannels.includes(name))]
      : candidates,
    refused,
    limits,
    adjustments:
      wantsBatch && !inBatch
        ? [...settled.adjustments, { field: "urgency", from: "batch", to: "realtime", reason: noBatchChannelReason }]
        : settled.adjustments,
    promptHash: promptHashOf(channelRequest),
    ...(wantsBatch ? { urgency: inBatch ? "batch" : "realtime" } : {}),
    ...(inBatch ? { unfinished: settled.unfinished ?? defaultUnfinished } : {}),
  }
}

/** A plan as JSON (what `peel run --dry-run` prints). @category planning */
export const toJson = (plan: Plan, channels: ReadonlyMap<string, Channel>) => ({
  id: plan.id,
  model: plan.model,
  size: plan.size,
  aspectRatio: plan.aspectRatio,
  candidates: plan.candidates.map((name) => {
    const channel = channels.get(name)
    return { channel: name, expectedCostUsd: channel === undefined ? 0 : channel.price(plan.channelRequest) }
  }),
  ...(plan.channelRequest.images === undefined ? {} : { referenceImages: plan.channelRequest.images.length }),
  refused: plan.refused,
  ...(plan.urgency === undefined ? {} : { urgency: plan.urgency }),
  adjustments: plan.adjustments,
  limits: plan.limits,
  promptHash: plan.promptHash,
})
