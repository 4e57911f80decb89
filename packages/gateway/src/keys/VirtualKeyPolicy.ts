/**
 * The real {@link KeyPolicy}: virtual keys from the key store ({@link VirtualKeys.VirtualKeys}), per-key rpm
 * from the rate limits ({@link RateLimits.RateLimits}), per-key budgets in the spend ledger
 * ({@link SpendLedger.SpendLedger}) — three state services, so a deployment that shares them (SQLite in
 * one state folder; Redis and Postgres with several replicas) shares every key's limits.
 *
 * - **authenticate**: the client's secret is hashed and looked up in the store on every request — no
 *   cache, so a key created or revoked (by `peel keys` or the admin API, in this process or another) counts
 *   from the next request. One indexed read of the local SQLite file costs microseconds; a network store may
 *   cache behind its own interface if it must, as long as revocation stays immediate. Unknown and revoked
 *   keys get 401 (the same words for both, and never the key). A store that cannot be read gets 503: no
 *   request is admitted without its key being checked.
 * - **admit**, before anything is spent, in this order:
 *   1. the model allow-list → 403 (aliases and retired ids count as the model they stand for; with
 *      `models/auto` the model routing picked);
 *   2. the budget: the request's expected price is **reserved** in the key's window (one atomic step of the
 *      ledger: refused when settled + reserved + this one would pass the cap), so concurrent requests can
 *      never jointly pass it → 429 with `Retry-After` (the window's end; or a few seconds when only
 *      requests in flight hold the rest of it); a request dearer than the whole budget → 403;
 *   3. the rpm: a start in the key's sliding 60 s window, taken only if one is free now
 *      (`RateLimits.tryAcquire`: never more than `rpm` admitted in any 60 s; a refusal takes nothing) →
 *      429 with `Retry-After` (when the oldest start leaves the window). A refusal here gives the
 *      reservation back.
 *   The admission is settled with the run's real cost (billed failures included), or released when
 *   nothing ran — exactly once, whichever comes first. A reservation whose gateway died expires after
 *   {@link KeySpend.defaultLeaseMillis}.
 *
 * **Why 429, not 402 or 403, for an exhausted budget**: it clears by itself when the window turns, which
 * is what 429 + `Retry-After` tells a client (and the official SDKs' retry logic) — back off, then try
 * again. 403 would say "never", 402 has no meaning the SDKs know. A request that can never fit (dearer
 * than the whole budget) is a 403: waiting would not help.
 *
 * **Modes.** `required`: every request needs an active key. `auto` (the default of `peel serve`): like
 * `required` once the store holds any key (active or revoked), open (every caller anonymous, unlimited)
 * while it holds none — so a fresh gateway on a laptop works with any key string, and creating the first
 * key closes it without a restart.
 *
 * @since 0.5.0
 */
import { Catalog } from "@peel/contract"
import type { ImageRequest } from "@peel/contract/Request"
import { type Budget, KeySpend, Money, RateLimits, SpendLedger, VirtualKeys } from "@peel/core"
import { Clock, Effect, Layer } from "effect"
import { Forbidden, KeyBudgetExhausted, KeyRateLimited, Unauthorized, Unavailable } from "../Errors.ts"
import { type Admission, admitted, anonymous, type Caller, KeyPolicy, type KeyPolicyShape } from "../KeyPolicy.ts"

/** @category models */
export type Mode = "auto" | "required"

/** @category models */
export interface Options {
  /** Default `auto`: open while the store holds no key at all. */
  readonly mode?: Mode | undefined
  /** How long a reservation holds if the gateway dies before settling it (default 15 minutes). */
  readonly leaseMillis?: number | undefined
}

/** The rpm window. @category limits */
export const rpmWindowMillis = 60_000

/** Retry-After when a budget is held only by reservations of requests in flight. @category limits */
export const inFlightRetrySeconds = 5

const unauthorized = (message: string) => new Unauthorized({ message })
const storeDown = (error: VirtualKeys.KeyStoreError) =>
  new Unavailable({ retryAfterSeconds: 5, message: `the key store cannot be read (${error.message})` })

/** The rpm limiter's key for a virtual key (its id: a replacement key starts with a fresh window). */
const rpmKey = (keyId: string) => `vkey:${keyId}`

const wholeSeconds = (millis: number) => Math.max(1, Math.ceil(millis / 1000))

/** Dollars a ledger can hold: a negative, NaN or infinite amount (a pricing bug) counts as 0, never poisons a sum. */
const dollars = (usd: number) => (Number.isFinite(usd) && usd > 0 ? usd : 0)

/**
 * The policy over the three services it is given.
 *
 * @category constructors
 */
export const make = (
  keys: VirtualKeys.VirtualKeysShape,
  ledger: SpendLedger.SpendLedgerShape,
  rateLimits: RateLimits.RateLimitsShape,
  options: Options = {},
): KeyPolicyShape => {
  const mode = options.mode ?? "auto"
  const leaseMillis = options.leaseMillis ?? KeySpend.defaultLeaseMillis
  /** Callers admitted this way are looked up again at admit (limits may have changed since; one read). */
  const records = new Map<string, VirtualKeys.KeyRecord>()

  /** Refused (`message`) once any key exists; anonymous while none does. The error is built only if used. */
  const openWhenEmpty = (message: string): Effect.Effect<Caller, Unauthorized | Unavailable> =>
    mode === "required"
      ? Effect.fail(unauthorized(message))
      : Effect.flatMap(keys.hasAny.pipe(Effect.mapError(storeDown)), (any) =>
          any ? Effect.fail(unauthorized(message)) : Effect.succeed(anonymous),
        )

  const authenticate = (secret: string | undefined): Effect.Effect<Caller, Unauthorized | Unavailable> =>
    Effect.gen(function* () {
      if (secret === undefined)
        return yield* openWhenEmpty(
          "a virtual key is required: send it as x-goog-api-key, Authorization: Bearer, or ?key=",
        )
      const record = yield* VirtualKeys.find(keys, secret).pipe(Effect.mapError(storeDown))
      if (record === undefined || record.revokedAt !== undefined)
        return yield* openWhenEmpty("the key is not valid (unknown or revoked)")
      records.set(record.id, record)
      return { keyId: record.id, name: record.name, prefix: record.prefix }
    })

  const refuseBudget = (
    record: VirtualKeys.KeyRecord,
    refused: Budget.Refused,
    now: number,
  ): Forbidden | KeyBudgetExhausted => {
    const { status, requestedUsd } = refused
    const window = record.limits.budget?.window ?? "window"
    if (requestedUsd > status.limitUsd)
      return new Forbidden({
        message: `this request's expected cost ${Money.format(requestedUsd)} is more than the key's whole budget (${Money.format(status.limitUsd)} per ${window})`,
      })
    if (status.spentUsd + requestedUsd > status.limitUsd)
      return new KeyBudgetExhausted({
        retryAfterSeconds: wholeSeconds(status.windowEnd - now),
        message: `the key's budget is spent: ${Money.format(status.spentUsd)} of ${Money.format(status.limitUsd)} this ${window}; it renews at ${new Date(status.windowEnd).toISOString()}`,
      })
    return new KeyBudgetExhausted({
      retryAfterSeconds: Math.min(inFlightRetrySeconds, wholeSeconds(status.windowEnd - now)),
      message: `the rest of the key's budget (${Money.format(status.limitUsd)} per ${window}) is reserved by its requests in flight; retry when they finish`,
    })
  }

  const admit = (
    caller: Caller,
    request: ImageRequest,
    estimateUsd: number,
  ): Effect.Effect<Admission, Forbidden | KeyRateLimited | KeyBudgetExhausted | Unavailable> =>
    Effect.gen(function* () {
      if (caller.keyId === anonymous.keyId) return admitted
      // Read again: limits may have changed, or the key been revoked, since authenticate.
      const cached = records.get(caller.keyId)
      const record =
        cached === undefined ? undefined : yield* keys.findByHash(cached.hash).pipe(Effect.mapError(storeDown))
      if (record === undefined || record.revokedAt !== undefined)
        return yield* new Forbidden({ message: "the key was revoked" })

      const { models } = record.limits
      if (models !== undefined) {
        if (request.model === undefined)
          return yield* new Forbidden({
            message: `this key may use only ${models.join(", ")}: name one of them as the model`,
          })
        if (!VirtualKeys.allowsModel(record, request.model))
          return yield* new Forbidden({
            message: `this key may not use ${Catalog.resolveModel(request.model)}; it may use ${models.join(", ")}`,
          })
      }

      const account = KeySpend.account(ledger, record, leaseMillis)
      const reserved = yield* account.reserve(dollars(estimateUsd))
      const now = yield* Clock.currentTimeMillis
      if ("_tag" in reserved) return yield* refuseBudget(record, reserved, now)

      if (record.limits.rpm !== undefined) {
        const wait = yield* rateLimits.tryAcquire(rpmKey(record.id), record.limits.rpm, rpmWindowMillis)
        if (wait > 0) {
          yield* account.release(reserved)
          return yield* new KeyRateLimited({
            retryAfterSeconds: Number.isFinite(wait) ? wholeSeconds(wait) : 60,
            message: `the key's rate limit is ${record.limits.rpm} requests per minute; retry in ${wholeSeconds(wait)} s`,
          })
        }
      }

      let open = true
      const once = (effect: Effect.Effect<void>) =>
        Effect.suspend(() => {
          if (!open) return Effect.void
          open = false
          return effect
        })
      return {
        settle: (costUsd) => once(account.settle(reserved, dollars(costUsd))),
        release: once(account.release(reserved)),
      }
    })

  return { authenticate, admit }
}

/**
 * The policy over the key store, spend ledger and rate limits in the context.
 *
 * @category layers
 */
export const layer = (
  options: Options = {},
): Layer.Layer<KeyPolicy, never, VirtualKeys.VirtualKeys | SpendLedger.SpendLedger | RateLimits.RateLimits> =>
  Layer.effect(
    KeyPolicy,
    Effect.gen(function* () {
      return make(yield* VirtualKeys.VirtualKeys, yield* SpendLedger.SpendLedger, yield* RateLimits.RateLimits, options)
    }),
  )
