/**
 * Known OpenAI-compatible proxies, as data: base URL, flat price, and what their chat route can honour.
 * Explicit keys in the pipeline override a preset's values. Prices change: each preset says when it was
 * checked.
 *
 * @since 0.1.0
 */
import type { Catalog } from "@peel/contract"

export interface Preset {
  readonly baseUrl: string
  /** USD per image, flat, any size. */
  readonly price: number
  readonly sizes: ReadonlyArray<Catalog.Size>
  readonly aspectRatios: ReadonlyArray<Catalog.AspectRatio>
  readonly models: ReadonlyArray<string>
  /** Send `image_config` (the chat route ignores size and aspect ratio). */
  readonly sendImageConfig: boolean
  /** Reference images the route takes (0: none; core then skips the channel for requests with images). */
  readonly referenceImages: number
  readonly verified: string
}

export const presets = {
  laozhang: {
    baseUrl: "https://api.laozhang.ai/v1",
    price: 0.05,
    sizes: ["1K"],
    aspectRatios: ["1:1"],
    models: ["gemini-3-pro-image", "gemini-3-pro-image-preview", "gemini-3.1-flash-image", "gemini-2.5-flash-image"],
    sendImageConfig: false,
    // its chat route is not known to take image_url parts: requests with reference images skip it
    referenceImages: 0,
    verified: "2026-11-12",
  },
} as const satisfies Record<string, Preset>

export type PresetName = keyof typeof presets
export const presetNames = Object.keys(presets) as ReadonlyArray<PresetName>
