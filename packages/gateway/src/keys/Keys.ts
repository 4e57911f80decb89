/**
 * Virtual keys for a gateway: the stores they live in and the service the admin API reads.
 *
 * By default the stores are the state folder's SQLite file (`<state>/journal.sqlite`: the key table and
 * the key spend ledger, shared with `peel keys` and every gateway on the same folder) and rate limits in
 * this process's memory (a per-key rpm holds per gateway process; replicas share it through a network
 * `RateLimits` store). A deployment passes its own {@link Stores} Layer (Postgres, Redis) instead.
 *
 * @since 0.5.0
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { RateLimits, SpendLedger, SpendLedgerSqlite, VirtualKeys, VirtualKeysSqlite, WorkJournal } from "@peel/core"
import { Context, Effect, Layer } from "effect"
import type { KeyPolicy } from "../KeyPolicy.ts"
import * as VirtualKeyPolicy from "./VirtualKeyPolicy.ts"

/** The state services virtual keys need. @category models */
export type Stores = VirtualKeys.VirtualKeys | SpendLedger.SpendLedger | RateLimits.RateLimits

/** How a gateway uses virtual keys. @category models */
export interface KeysConfig {
  /** `auto` (open while the store holds no key), `required`. */
  readonly mode?: VirtualKeyPolicy.Mode | undefined
  /** The stores; by default {@link layerStateDir} of the gateway's state folder. */
  readonly stores?: Layer.Layer<Stores, VirtualKeys.KeyStoreError> | undefined
  /** The admin key (its value, from the environment variable `--admin-key-env` names): enables `/admin/*`. */
  readonly adminKey?: string | undefined
}

/** The key stores of a state folder: its SQLite file, and rate limits in memory. @category layers */
export const layerStateDir = (stateDir: string): Layer.Layer<Stores, VirtualKeys.KeyStoreError> => {
  const file = WorkJournal.fileIn(stateDir)
  return Layer.mergeAll(VirtualKeysSqlite.layer(file), SpendLedgerSqlite.layer(file), RateLimits.layerMemory)
}

/** What `/admin/*` works with: the stores, and the admin key's hash. Off: every admin path is a 404. @category models */
export interface AdminShape {
  readonly enabled: boolean
  /** Whether `presented` is the admin key (constant time). */
  readonly accepts: (presented: string | undefined) => boolean
  readonly keys: VirtualKeys.VirtualKeysShape | undefined
  readonly ledger: SpendLedger.SpendLedgerShape | undefined
}

/** @category services */
export class Admin extends Context.Service<Admin, AdminShape>()("@peel/gateway/Admin") {}

/** No admin API. @category layers */
export const layerAdminOff: Layer.Layer<Admin> = Layer.succeed(Admin, {
  enabled: false,
  accepts: () => false,
  keys: undefined,
  ledger: undefined,
})

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

/** The admin API over the stores in the context, enabled when `adminKey` is a non-empty string. @category layers */
export const layerAdmin = (
  adminKey: string | undefined,
): Layer.Layer<Admin, never, VirtualKeys.VirtualKeys | SpendLedger.SpendLedger> =>
  Layer.effect(
    Admin,
    Effect.gen(function* () {
      const keys = yield* VirtualKeys.VirtualKeys
      const ledger = yield* SpendLedger.SpendLedger
      if (adminKey === undefined || adminKey === "") return { enabled: false, accepts: () => false, keys, ledger }
      const expected = digest(adminKey)
      return {
        enabled: true,
        // Hashes of equal length, compared in constant time: the key's length and content both stay hidden.
        accepts: (presented) => presented !== undefined && timingSafeEqual(digest(presented), expected),
        keys,
        ledger,
      }
    }),
  )

/**
 * The key policy and the admin API of a gateway with virtual keys, over `config.stores` (or the state
 * folder's). Built once: the policy and the admin API share one connection to each store.
 *
 * @category layers
 */
export const layer = (
  config: KeysConfig,
  stateDir: string,
): Layer.Layer<KeyPolicy | Admin, VirtualKeys.KeyStoreError> =>
  Layer.mergeAll(VirtualKeyPolicy.layer({ mode: config.mode }), layerAdmin(config.adminKey)).pipe(
    Layer.provide(config.stores ?? layerStateDir(stateDir)),
  )
