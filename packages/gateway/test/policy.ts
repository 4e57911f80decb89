/**
 * A small KeyPolicy for the wire tests (the virtual-key store has its own tests): fixed keys that
 * authenticate, and keys whose admission fails with each key error, so each error's rendering can be
 * checked through the SDKs. It records every secret it was handed.
 */
import { Effect, Layer } from "effect"
import { Errors, KeyPolicy } from "../src/index.ts"

export const seen: Array<string | undefined> = []

export const keys = {
  good: "client-good-key-1",
  forbidden: "client-forbidden-key-2",
  rpm: "client-rpm-key-3",
  budget: "client-budget-key-4",
} as const

export const layer = Layer.succeed(KeyPolicy.KeyPolicy, {
  authenticate: (secret) => {
    seen.push(secret)
    const name = Object.entries(keys).find(([, value]) => value === secret)?.[0]
    return name === undefined
      ? Effect.fail(new Errors.Unauthorized({ message: "unknown or revoked key" }))
      : Effect.succeed({ keyId: name, name, prefix: secret!.slice(0, 8) })
  },
  admit: (caller) => {
    switch (caller.name) {
      case "forbidden":
        return Effect.fail(new Errors.Forbidden({ message: "this key may not use gemini-3-pro-image" }))
      case "rpm":
        return Effect.fail(new Errors.KeyRateLimited({ retryAfterSeconds: 42, message: "key rpm limit (2/min)" }))
      case "budget":
        return Effect.fail(
          new Errors.KeyBudgetExhausted({ retryAfterSeconds: 3600, message: "key budget $1.00/day is spent" }),
        )
      default:
        return Effect.succeed(KeyPolicy.admitted)
    }
  },
})
