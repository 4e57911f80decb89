/**
 * What happened to each gateway request, told to whoever listens: the metrics and status page, the per-key
 * spend log. One event per HTTP request that reached a route (errors included), published once, after the
 * answer is known (for a run, after it finished — also when the client had gone). Listeners are called
 * synchronously: keep them cheap, never throw (a throwing listener is dropped from that event, not the
 * gateway). Events hold no prompt and no key: `keyName` is the virtual key's name.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, type Scope } from "effect"

/** One finished gateway request. @category models */
export interface GatewayEvent {
  readonly requestId: string
  /** The route's name (`gemini.generateContent`, `openai.images.generations`, ...). */
  readonly route: string
  /** The virtual key's name; undefined when the request was not authenticated. */
  readonly keyName?: string | undefined
  /** The model asked for (or made, once known). */
  readonly model?: string | undefined
  /** The channel that made the image(s); undefined when none did. */
  readonly channel?: string | undefined
  /** The HTTP status the answer got (499: the client left before the answer; its run still finished). */
  readonly status: number
  readonly latencyMs: number
  /** What the request cost upstream (billed failures included); 0 for cache hits and refusals. */
  readonly costUsd: number
  readonly cache: "hit" | "miss" | "coalesced" | "none"
  /** Upstream calls made. */
  readonly attempts: number
  /** The gateway error's tag (`Unavailable`, `BadRequest`, ...) when the request failed. */
  readonly error?: string | undefined
  /** Images answered. */
  readonly images: number
  /** Milliseconds since the epoch when the request arrived. */
  readonly startedAt: number
}

/** @category models */
export interface GatewayEventsShape {
  readonly publish: (event: GatewayEvent) => Effect.Effect<void>
  /** Hear every event from now until the Scope closes. */
  readonly listen: (listener: (event: GatewayEvent) => void) => Effect.Effect<void, never, Scope.Scope>
}

/** @category services */
export class GatewayEvents extends Context.Service<GatewayEvents, GatewayEventsShape>()(
  "@peel/gateway/GatewayEvents",
) {}

/** A fresh, empty list of listeners. @category constructors */
export const make: Effect.Effect<GatewayEventsShape> = Effect.sync(() => {
  const listeners = new Set<(event: GatewayEvent) => void>()
  return {
    publish: (event) =>
      Effect.sync(() => {
        for (const listener of listeners) {
          try {
            listener(event)
          } catch {
            // a listener's bug must not break the answer or the other listeners
          }
        }
      }),
    listen: (listener) =>
      Effect.acquireRelease(
        Effect.sync(() => listeners.add(listener)),
        () => Effect.sync(() => listeners.delete(listener)),
      ).pipe(Effect.asVoid),
  }
})

/** @category layers */
export const layer: Layer.Layer<GatewayEvents> = Layer.effect(GatewayEvents, make)
