/**
 * Who may call the gateway and what they may spend. `authenticate` turns the secret a client sent
 * (`x-goog-api-key`, `?key=`, `Authorization: Bearer`) into a {@link Caller}; `admit` decides one request
 * before anything is spent (model allow-list, per-key rpm, per-key budget by reservation) and hands back an
 * {@link Admission} that is settled with what the run cost, or released when nothing ran. Execute calls
 * `settle` or `release` exactly once per admission, also when the client disconnected.
 *
 * {@link layerOpen} admits everyone as the anonymous caller (any key, or none): the gateway without
 * virtual keys. The real layer is `keys/VirtualKeyPolicy.ts` (virtual keys, per-key rpm and budgets).
 *
 * @since 0.1.0
 */
import type { ImageRequest } from "@peel/contract/Request"
import { Context, Effect, Layer } from "effect"
import type { Forbidden, KeyBudgetExhausted, KeyRateLimited, Unauthorized, Unavailable } from "./Errors.ts"

/** Who is calling: a virtual key (never its secret). @category models */
export interface Caller {
  readonly keyId: string
  readonly name: string
  /** The key's first characters, safe to show (`peel_ab12…`); empty for the anonymous caller. */
  readonly prefix: string
}

/** One admitted request: settle it with what it cost, or release it when nothing ran. @category models */
export interface Admission {
  readonly settle: (costUsd: number) => Effect.Effect<void>
  readonly release: Effect.Effect<void>
}

/** @category models */
export interface KeyPolicyShape {
  /** Unavailable: the key store cannot be read (fail closed: 503, nothing admitted). */
  readonly authenticate: (secret: string | undefined) => Effect.Effect<Caller, Unauthorized | Unavailable>
  readonly admit: (
    caller: Caller,
    request: ImageRequest,
    estimateUsd: number,
  ) => Effect.Effect<Admission, Forbidden | KeyRateLimited | KeyBudgetExhausted | Unavailable>
}

/** @category services */
export class KeyPolicy extends Context.Service<KeyPolicy, KeyPolicyShape>()("@peel/gateway/KeyPolicy") {}

/** The caller of a gateway without virtual keys. @category models */
export const anonymous: Caller = { keyId: "anonymous", name: "anonymous", prefix: "" }

/** An admission that settles and releases nothing. @category constructors */
export const admitted: Admission = { settle: () => Effect.void, release: Effect.void }

/** Everyone is the anonymous caller and every request is admitted. @category layers */
export const layerOpen: Layer.Layer<KeyPolicy> = Layer.succeed(KeyPolicy, {
  authenticate: () => Effect.succeed(anonymous),
  admit: () => Effect.succeed(admitted),
})
