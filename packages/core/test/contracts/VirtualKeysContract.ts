/**
 * The virtual key store's contract: what every {@link VirtualKeysShape} implementation must do, whatever
 * holds the keys (memory, SQLite now; Postgres, Redis next). Call {@link virtualKeysContract} from a test
 * file with a way to connect to a fresh, empty store; every case runs against it, on the TestClock.
 *
 * What it pins down, because the gateway's authentication rests on it:
 * - **no secret at rest**: a record holds the secret's SHA-256 and its display prefix, never the secret;
 * - **names unique among active keys**, atomically: of concurrent creates with one name (on two
 *   connections when the store can be shared) exactly one wins; revoking frees the name;
 * - **revocation is one step and read live**: a key revoked (or created) on one connection is seen by the
 *   next lookup on another, with no cache to wait out;
 * - limits (budget, rpm, models) come back exactly as stored; a list holds revoked keys, oldest first.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, type Scope } from "effect"
import { TestClock } from "effect/testing"
import * as VirtualKeys from "../../src/state/VirtualKeys.ts"

/** A store under test. @category model */
export interface StoreUnderTest {
  /** Connect to the store (a new connection each time, all to the same keys), for the Scope's life. */
  readonly connect: Effect.Effect<VirtualKeys.VirtualKeysShape, VirtualKeys.KeyStoreError, Scope.Scope>
  /** Whether two connections reach the same keys (a file, a server); memory skips the cases that need two. */
  readonly shared: boolean
}

const tagOf = (exit: Exit.Exit<unknown, { readonly _tag: string }>) =>
  Exit.isSuccess(exit) ? "ok" : exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error._tag

/** Run the contract against a store; `fresh` makes a new, empty one for each case. */
export const virtualKeysContract = (name: string, fresh: () => StoreUnderTest) =>
  describe(`virtual keys contract: ${name}`, () => {
    it.effect("a created key is found by its secret with its limits; its record holds no secret", () =>
      Effect.gen(function* () {
        const store = yield* fresh().connect
        expect(yield* store.hasAny).toBe(false)
        yield* TestClock.adjust("1000 millis")
        const { record, secret } = yield* VirtualKeys.create(store, "team-a", {
          budget: { limitUsd: 2.5, window: "1d" },
          rpm: 30,
          models: ["gemini-3-pro-image", "gemini-2.5-flash-image"],
        })
        expect(secret).toMatch(/^peel_[0-9A-Za-z]{43}$/)
        expect(record.prefix).toBe(secret.slice(0, 12))
        expect(record.hash).toBe(VirtualKeys.hashOf(secret))
        expect(record.id).toMatch(/^vk_[0-9a-f]{16}$/)
        expect(record.createdAt).toBe(1000)
        expect(JSON.stringify(record)).not.toContain(secret.slice(12))
        const found = yield* VirtualKeys.find(store, secret)
        expect(found).toEqual(record)
        expect(found?.limits).toEqual({
          budget: { limitUsd: 2.5, window: "1d" },
          rpm: 30,
          models: ["gemini-3-pro-image", "gemini-2.5-flash-image"],
        })
        expect(yield* store.hasAny).toBe(true)
        // unknown, malformed, a near miss: nothing
        expect(yield* VirtualKeys.find(store, VirtualKeys.newSecret())).toBeUndefined()
        expect(yield* VirtualKeys.find(store, "not a key")).toBeUndefined()
        const nearMiss = `${secret.slice(0, -1)}${secret.endsWith("x") ? "y" : "x"}` // one character off, never the key itself
        expect(yield* VirtualKeys.find(store, nearMiss)).toBeUndefined()
        expect(yield* VirtualKeys.find(store, "")).toBeUndefined()
        // a key without limits has none
        const open = yield* VirtualKeys.create(store, "open", {})
        expect((yield* VirtualKeys.find(store, open.secret))?.limits).toEqual({})
        // the listing holds what the store holds, and nothing of either secret
        const listed = yield* store.list
        expect(listed.map((key) => key.name)).toEqual(["team-a", "open"])
        for (const value of [secret, open.secret]) expect(JSON.stringify(listed)).not.toContain(value.slice(12))
      }).pipe(Effect.scoped),
    )

    it.effect("names are unique among active keys; revoking frees the name and the key stops working", () =>
      Effect.gen(function* () {
        const store = yield* fresh().connect
        const first = yield* VirtualKeys.create(store, "svc", { rpm: 5 })
        expect(tagOf(yield* Effect.exit(VirtualKeys.create(store, "svc", {})))).toBe("KeyNameTaken")
        yield* TestClock.adjust("5000 millis")
        const revoked = yield* store.revoke("svc")
        expect(revoked).toMatchObject({ id: first.record.id, name: "svc", revokedAt: 5000 })
        expect((yield* VirtualKeys.find(store, first.secret))?.revokedAt).toBe(5000)
        // a second revoke finds no active key, nor does an unknown name
        expect(tagOf(yield* Effect.exit(store.revoke("svc")))).toBe("KeyNotFound")
        expect(tagOf(yield* Effect.exit(store.revoke("nobody")))).toBe("KeyNotFound")
        // the replacement: same name, another id and secret; the old one stays revoked
        const second = yield* VirtualKeys.create(store, "svc", { rpm: 10 })
        expect(second.record.id).not.toBe(first.record.id)
        expect((yield* VirtualKeys.find(store, second.secret))?.revokedAt).toBeUndefined()
        expect((yield* VirtualKeys.find(store, first.secret))?.revokedAt).toBe(5000)
        const listed = yield* store.list
        expect(listed.map((key) => [key.name, key.revokedAt])).toEqual([
          ["svc", 5000],
          ["svc", undefined],
        ])
      }).pipe(Effect.scoped),
    )

    it.effect("bad names and limits are refused before anything is stored", () =>
      Effect.gen(function* () {
        const store = yield* fresh().connect
        for (const [badName, limits] of [
          ["", {}],
          ["has space", {}],
          ["-dash-first", {}],
          ["x".repeat(65), {}],
          ["ok", { rpm: 0 }],
          ["ok", { rpm: 1.5 }],
          ["ok", { budget: { limitUsd: 0, window: "1d" } }],
          ["ok", { budget: { limitUsd: 1, window: "daily" } }],
          ["ok", { models: [] }],
          ["ok", { models: [" "] }],
          ["ok", { models: ["gemini-3-pro-image", "dall-e-3"] }],
        ] as const)
          expect(tagOf(yield* Effect.exit(VirtualKeys.create(store, badName, limits)))).toBe("InvalidKeySpec")
        expect(yield* store.hasAny).toBe(false)
      }).pipe(Effect.scoped),
    )

    it.effect("create is atomic: ten at once with one name, exactly one key", () =>
      Effect.gen(function* () {
        const under = fresh()
        const connections = yield* Effect.forEach(under.shared ? [1, 2] : [1], () => under.connect)
        const exits = yield* Effect.all(
          Array.from({ length: 10 }, (_, index) =>
            Effect.exit(VirtualKeys.create(connections[index % connections.length]!, "same", {})),
          ),
          { concurrency: "unbounded" },
        )
        expect(exits.map(tagOf).sort()).toEqual(["KeyNameTaken", ...Array(8).fill("KeyNameTaken"), "ok"].sort())
        expect((yield* connections[0]!.list).length).toBe(1)
        // and of concurrent revokes, exactly one revokes it
        const revokes = yield* Effect.all(
          Array.from({ length: 6 }, (_, index) => Effect.exit(connections[index % connections.length]!.revoke("same"))),
          { concurrency: "unbounded" },
        )
        expect(revokes.map(tagOf).filter((tag) => tag === "ok")).toHaveLength(1)
      }).pipe(Effect.scoped),
    )

    it.effect("read live: a key created or revoked on one connection is seen by the next lookup on another", () =>
      Effect.gen(function* () {
        const under = fresh()
        if (!under.shared) return
        const one = yield* under.connect
        const two = yield* under.connect
        expect(yield* two.hasAny).toBe(false)
        const { secret } = yield* VirtualKeys.create(one, "live", { models: ["gemini-3-pro-image"] })
        expect((yield* VirtualKeys.find(two, secret))?.name).toBe("live")
        expect(yield* two.hasAny).toBe(true)
        yield* two.revoke("live")
        expect((yield* VirtualKeys.find(one, secret))?.revokedAt).toBeDefined()
      }).pipe(Effect.scoped),
    )
  })
