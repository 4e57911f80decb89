/**
 * What a call costs, computed from the catalog's token prices: from the response's `usageMetadata`
 * when present, from the catalog's expected output tokens otherwise (pricing.md: "Cost of one call").
 *
 * @since 0.1.0
 */
import { type AspectRatio, batchDiscount, findModel, type Size } from "./Catalog.ts"
import type { Billing, Channel, ChannelRequest } from "./Channel.ts"
import type { Usage } from "./Request.ts"

/** `standard` for real-time calls, `batch` for Google's Batch API (half price). @category pricing */
export type Tier = "standard" | "batch"

const roundUsd = (usd: number): number => Math.round(usd * 1e6) / 1e6

/** Rough token count of a prompt (4 characters a token), used only before a call. @category pricing */
export const estimatePromptTokens = (prompt: string): number => Math.max(1, Math.ceil(prompt.length / 4))

/**
 * Cost of one call from reported usage. Unknown models cost 0 (and `peel validate` warns about them).
 *
 * @category pricing
 */
export const costFromUsage = (model: string, usage: Usage, tier: Tier = "standard"): number => {
  const info = findModel(model)
  if (info === undefined) return 0
  const factor = tier === "batch" ? batchDiscount : 1
  const prices = info.prices
  const usd =
    ((usage.inputTokens ?? 0) * prices.textInputPerMillion +
      (usage.outputImageTokens ?? 0) * prices.imageOutputPerMillion +
      ((usage.outputTextTokens ?? 0) + (usage.thoughtTokens ?? 0)) * prices.textOutputPerMillion) /
    1e6
  return roundUsd(usd * factor)
}

/**
 * The catalog's expected usage for a request (no thoughts, prompt estimated): each reference image adds
 * the model's `inputImageTokens` (Pro 560, Flash 258) to the input tokens.
 *
 * @category pricing
 */
export const expectedUsage = (model: string, size: Size, prompt = "", images = 0): Usage => ({
  inputTokens:
    (prompt === "" ? 0 : estimatePromptTokens(prompt)) + images * (findModel(model)?.prices.inputImageTokens ?? 0),
  outputImageTokens: findModel(model)?.outputTokens[size] ?? 0,
})

/**
 * Expected cost of one image before the call: output image tokens for the size (prompt excluded when
 * not given). Pro 1K/2K ≈ $0.134, 4K $0.24, Flash $0.039; batch half of that.
 *
 * @category pricing
 */
export const expectedCost = (model: string, size: Size, tier: Tier = "standard", prompt = "", images = 0): number =>
  costFromUsage(model, expectedUsage(model, size, prompt, images), tier)

/**
 * Expected cost of a channel request at catalog prices: output tokens for its size plus its reference
 * images' input tokens (prompt excluded, like {@link expectedCost}). What token-priced channels quote.
 *
 * @category pricing
 */
export const expectedRequestCost = (request: ChannelRequest, tier: Tier = "standard"): number =>
  expectedCost(request.model, request.size, tier, "", request.images?.length ?? 0)

/** The price tier a channel bills at: batch channels at Google's batch discount. @category pricing */
export const tierOf = (channel: Channel): Tier => (channel.capabilities.batch === true ? "batch" : "standard")

/**
 * What one attempt cost — the one place Peel prices a call. The upstream's or channel's own figure wins,
 * then the usage it reported at catalog prices; a successful call that says nothing costs the channel's
 * expected price, a failed one that says nothing was not billed.
 *
 * @category pricing
 */
export const attemptCost = (
  channel: Channel,
  request: ChannelRequest,
  billing: Billing | undefined,
  succeeded: boolean,
): number => {
  if (billing?.costUsd !== undefined) return billing.costUsd
  if (billing?.usage !== undefined) return costFromUsage(request.model, billing.usage, tierOf(channel))
  return succeeded ? channel.price(request) : 0
}

/** Re-exported for convenience when pricing per aspect ratio matters to a plugin. @category pricing */
export type { AspectRatio, Size }
