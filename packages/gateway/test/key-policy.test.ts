/**
 * The virtual-key policy over real stores (memory, and the SQLite file a state folder holds) on the
 * TestClock: who is let in (auto and required modes, unknown and revoked keys, a store that cannot be
 * read), the model allow-list, per-key budgets by reservation (20 at once against room for 5: exactly 5,
 * never over the cap), per-key rpm (never more than rpm in any 60 s, refusals take nothing), two keys
 * independent, settle/release exactly once.
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { KeySpend, RateLimits, SpendLedger, SpendLedgerSqlite, VirtualKeys, VirtualKeysSqlite } from "@peel/core"
import { Clock, Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import { KeyPolicy, VirtualKeyPolicy } from "../src/index.ts"

const TestClockNow = Clock.currentTimeMillis

const KeySpendStatus = (ledger: SpendLedger.SpendLedgerShape, record: VirtualKeys.KeyRecord) =>
  KeySpend.account(ledger, record).status

const pro = { prompt: "a lighthouse", model: "gemini-3-pro-image" }

/** The policy over fresh memory stores. */
const setup = (mode: VirtualKeyPolicy.Mode = "auto") =>
  Effect.gen(function* () {
    const keys = yield* VirtualKeys.makeMemory
    const ledger = yield* SpendLedger.makeMemory
    const limits = yield* RateLimits.makeMemory
    return { keys, ledger, policy: VirtualKeyPolicy.make(keys, ledger, limits, { mode }) }
  })

const failureOf = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? (exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error as E) : undefined

const tagOf = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>) =>
  Exit.isSuccess(exit) ? "ok" : failureOf(exit)?._tag

describe("VirtualKeyPolicy.authenticate", () => {
  it.effect(
    "auto: open (anonymous) while the store holds no key; closed from the first key on, without a restart",
    () =>
      Effect.gen(function* () {
        const { keys, policy } = yield* setup("auto")
        expect(yield* policy.authenticate(undefined)).toEqual(KeyPolicy.anonymous)
        expect(yield* policy.authenticate("the-real-google-key")).toEqual(KeyPolicy.anonymous)
        const { record, secret } = yield* VirtualKeys.create(keys, "team-a", {})
        expect(yield* policy.authenticate(secret)).toEqual({ keyId: record.id, name: "team-a", prefix: record.prefix })
        const unknown = yield* Effect.exit(policy.authenticate("the-real-google-key"))
        expect(failureOf(unknown)).toMatchObject({
          _tag: "Unauthorized",
          message: "the key is not valid (unknown or revoked)",
        })
        expect(tagOf(yield* Effect.exit(policy.authenticate(undefined)))).toBe("Unauthorized")
        yield* keys.revoke("team-a")
        const revoked = yield* Effect.exit(policy.authenticate(secret))
        expect(tagOf(revoked)).toBe("Unauthorized")
        // still closed: a revoked key counts as "keys exist"
        expect(tagOf(yield* Effect.exit(policy.authenticate(undefined)))).toBe("Unauthorized")
        expect(JSON.stringify(failureOf(revoked))).not.toContain(secret.slice(12))
      }),
  )

  it.effect("required: closed even with no key at all", () =>
    Effect.gen(function* () {
      const { policy } = yield* setup("required")
      expect(tagOf(yield* Effect.exit(policy.authenticate(undefined)))).toBe("Unauthorized")
      expect(tagOf(yield* Effect.exit(policy.authenticate(VirtualKeys.newSecret())))).toBe("Unauthorized")
    }),
  )

  it.effect("a key store that cannot be read: 503, nobody let in", () =>
    Effect.gen(function* () {
      const file = join(mkdtempSync(join(tmpdir(), "peel-policy-")), "journal.sqlite")
      const store = VirtualKeysSqlite.open(file)
      const { secret } = yield* VirtualKeys.create(store.shape, "k", {})
      const policy = VirtualKeyPolicy.make(store.shape, yield* SpendLedger.makeMemory, yield* RateLimits.makeMemory)
      expect((yield* policy.authenticate(secret)).name).toBe("k")
      store.close()
      const down = yield* Effect.exit(policy.authenticate(secret))
      expect(failureOf(down)).toMatchObject({ _tag: "Unavailable", retryAfterSeconds: 5 })
      expect(tagOf(yield* Effect.exit(policy.authenticate(undefined)))).toBe("Unavailable")
    }),
  )
})

describe("VirtualKeyPolicy.admit", () => {
  it.effect("the model allow-list: 403 for another model, for no model, and never a reservation", () =>
    Effect.gen(function* () {
      const { keys, ledger, policy } = yield* setup()
      const { record, secret } = yield* VirtualKeys.create(keys, "flash", {
        models: ["nano-banana-2"],
        budget: { limitUsd: 1, window: "1d" },
      })
      const caller = yield* policy.authenticate(secret)
      const refused = yield* Effect.exit(policy.admit(caller, pro, 0.134))
      expect(failureOf(refused)).toMatchObject({
        _tag: "Forbidden",
        message: "this key may not use gemini-3-pro-image; it may use nano-banana-2",
      })
      expect(tagOf(yield* Effect.exit(policy.admit(caller, { prompt: "x" }, 0.04)))).toBe("Forbidden")
      const admitted = yield* policy.admit(caller, { prompt: "x", model: "gemini-3.1-flash-image" }, 0.04)
      yield* admitted.release
      expect((yield* KeySpendStatus(ledger, record)).reservedUsd).toBe(0)
    }),
  )

  it.effect("budget: 20 at once against room for 5 → exactly 5 admitted; settled spend never passes the cap", () =>
    Effect.gen(function* () {
      const { keys, ledger, policy } = yield* setup()
      yield* TestClock.adjust("3 hours")
      const { record, secret } = yield* VirtualKeys.create(keys, "team-a", { budget: { limitUsd: 0.7, window: "1d" } })
      const caller = yield* policy.authenticate(secret)
      const exits = yield* Effect.all(
        Array.from({ length: 20 }, () => Effect.exit(policy.admit(caller, pro, 0.134))),
        { concurrency: "unbounded" },
      )
      const admitted = exits.filter(Exit.isSuccess).map((exit) => exit.value)
      expect(admitted).toHaveLength(5)
      const refusals = exits.filter(Exit.isFailure).map(failureOf)
      expect(refusals).toHaveLength(15)
      for (const refusal of refusals)
        expect(refusal).toMatchObject({ _tag: "KeyBudgetExhausted", retryAfterSeconds: 5 })
      expect((yield* KeySpendStatus(ledger, record)).reservedUsd).toBeCloseTo(0.67, 9)
      // each run costs what it reserved, or less; one failed with nothing billed
      yield* Effect.forEach(admitted.slice(0, 4), (admission) => admission.settle(0.134))
      yield* admitted[4]!.release
      const status = yield* KeySpendStatus(ledger, record)
      expect(status.spentUsd).toBeCloseTo(0.536, 9)
      expect(status.reservedUsd).toBe(0)
      // room for one more (0.164 left), not two: spend stays under the cap; the second is refused while the
      // first is in flight (Retry-After: a few seconds)...
      const one = yield* policy.admit(caller, pro, 0.134)
      const inFlight = yield* Effect.exit(policy.admit(caller, pro, 0.134))
      expect(failureOf(inFlight)).toMatchObject({ _tag: "KeyBudgetExhausted", retryAfterSeconds: 5 })
      yield* one.settle(0.134)
      // ...and once it is SPENT, until the window's end, 21 h away
      const spent = yield* Effect.exit(policy.admit(caller, pro, 0.134))
      expect(failureOf(spent)).toMatchObject({ _tag: "KeyBudgetExhausted", retryAfterSeconds: 21 * 3600 })
      expect(failureOf(spent)?.message).toContain("the key's budget is spent: $0.6700 of $0.7000 this 1d")
      expect((yield* KeySpendStatus(ledger, record)).spentUsd).toBeLessThanOrEqual(0.7)
      // the next window is fresh money
      yield* TestClock.adjust("21 hours")
      yield* policy.admit(caller, pro, 0.134)
    }),
  )

  it.effect("a request dearer than the whole budget is a 403: waiting would not help", () =>
    Effect.gen(function* () {
      const { keys, policy } = yield* setup()
      const { secret } = yield* VirtualKeys.create(keys, "small", { budget: { limitUsd: 0.1, window: "1h" } })
      const refused = yield* Effect.exit(policy.admit(yield* policy.authenticate(secret), pro, 0.24))
      expect(failureOf(refused)).toMatchObject({ _tag: "Forbidden" })
      expect(failureOf(refused)?.message).toContain("more than the key's whole budget ($0.1000 per 1h)")
    }),
  )

  it.effect("rpm: never more than rpm in any 60 s; a refusal takes no start and gives its reservation back", () =>
    Effect.gen(function* () {
      const { keys, ledger, policy } = yield* setup()
      const { record, secret } = yield* VirtualKeys.create(keys, "svc", {
        rpm: 5,
        budget: { limitUsd: 100, window: "1d" },
      })
      const caller = yield* policy.authenticate(secret)
      const admitted: Array<number> = []
      const attempt = Effect.gen(function* () {
        const exit = yield* Effect.exit(policy.admit(caller, pro, 0.134))
        if (Exit.isSuccess(exit)) {
          admitted.push(yield* TestClockNow)
          yield* exit.value.settle(0)
        }
        return exit
      })
      const burst = yield* Effect.all(
        Array.from({ length: 20 }, () => attempt),
        { concurrency: "unbounded" },
      )
      expect(burst.filter(Exit.isSuccess)).toHaveLength(5)
      for (const refusal of burst.filter(Exit.isFailure).map(failureOf))
        expect(refusal).toMatchObject({ _tag: "KeyRateLimited", retryAfterSeconds: 60 })
      // refusals reserved nothing that stayed
      expect((yield* KeySpendStatus(ledger, record)).reservedUsd).toBe(0)
      yield* TestClock.adjust("59 seconds")
      expect(failureOf(yield* attempt)).toMatchObject({ _tag: "KeyRateLimited", retryAfterSeconds: 1 })
      // a request every 7 s for 5 minutes: the sliding window lets exactly 5 through per 60 s
      for (let step = 0; step < 43; step++) {
        yield* TestClock.adjust("7 seconds")
        yield* attempt
      }
      for (const start of admitted)
        expect(admitted.filter((at) => at >= start && at < start + 60_000).length).toBeLessThanOrEqual(5)
      expect(admitted.length).toBeGreaterThanOrEqual(5 + 5 * 4)
    }),
  )

  it.effect("two keys' budgets and rpm are independent", () =>
    Effect.gen(function* () {
      const { keys, policy } = yield* setup()
      const a = yield* policy.authenticate(
        (yield* VirtualKeys.create(keys, "a", { rpm: 2, budget: { limitUsd: 0.3, window: "1d" } })).secret,
      )
      const b = yield* policy.authenticate((yield* VirtualKeys.create(keys, "b", { rpm: 3 })).secret)
      const run = (caller: KeyPolicy.Caller, times: number) =>
        Effect.all(
          Array.from({ length: times }, () =>
            Effect.exit(Effect.flatMap(policy.admit(caller, pro, 0.134), (admission) => admission.settle(0.134))),
          ),
        )
      expect((yield* run(a, 4)).map(tagOf)).toEqual(["ok", "ok", "KeyBudgetExhausted", "KeyBudgetExhausted"])
      expect((yield* run(b, 4)).map(tagOf)).toEqual(["ok", "ok", "ok", "KeyRateLimited"])
      yield* TestClock.adjust("1 minute")
      // a's budget is spent for the day, b's rpm is back; b spent 3 × 0.134 > a's whole budget: independent
      expect((yield* run(a, 1)).map(tagOf)).toEqual(["KeyBudgetExhausted"])
      expect((yield* run(b, 3)).map(tagOf)).toEqual(["ok", "ok", "ok"])
    }),
  )

  it.effect("settle and release count once, whichever comes first", () =>
    Effect.gen(function* () {
      const { keys, ledger, policy } = yield* setup()
      const { record, secret } = yield* VirtualKeys.create(keys, "k", { budget: { limitUsd: 1, window: "1d" } })
      const admission = yield* policy.admit(yield* policy.authenticate(secret), pro, 0.134)
      yield* admission.settle(0.2)
      yield* admission.settle(0.2)
      yield* admission.release
      expect(yield* KeySpendStatus(ledger, record)).toMatchObject({ spentUsd: 0.2, reservedUsd: 0 })
    }),
  )

  it.effect("a NaN or negative amount (a pricing bug) counts as $0 and never poisons the key's ledger", () =>
    Effect.gen(function* () {
      const { keys, ledger, policy } = yield* setup()
      const { record, secret } = yield* VirtualKeys.create(keys, "k", { budget: { limitUsd: 1, window: "1d" } })
      const caller = yield* policy.authenticate(secret)
      const first = yield* policy.admit(caller, pro, Number.NaN)
      yield* first.settle(Number.NaN)
      const second = yield* policy.admit(caller, pro, -1)
      yield* second.settle(0.25)
      expect(yield* KeySpendStatus(ledger, record)).toMatchObject({ spentUsd: 0.25, reservedUsd: 0 })
    }),
  )

  it.effect("a key revoked between authenticate and admit is refused at admit", () =>
    Effect.gen(function* () {
      const { keys, policy } = yield* setup()
      const { secret } = yield* VirtualKeys.create(keys, "k", {})
      const caller = yield* policy.authenticate(secret)
      yield* keys.revoke("k")
      expect(tagOf(yield* Effect.exit(policy.admit(caller, pro, 0.134)))).toBe("Forbidden")
    }),
  )

  it.effect("with the state folder's SQLite stores: two policies (two gateways) on one file share a key's budget", () =>
    Effect.gen(function* () {
      const file = join(mkdtempSync(join(tmpdir(), "peel-policy-")), "journal.sqlite")
      const open = Effect.gen(function* () {
        const keys = yield* VirtualKeysSqlite.make(file)
        const ledger = yield* SpendLedgerSqlite.make(file)
        return { keys, policy: VirtualKeyPolicy.make(keys, ledger, yield* RateLimits.makeMemory) }
      })
      const one = yield* open
      const two = yield* open
      const { secret } = yield* VirtualKeys.create(one.keys, "shared", { budget: { limitUsd: 0.5, window: "1d" } })
      const callers = [yield* one.policy.authenticate(secret), yield* two.policy.authenticate(secret)]
      const exits = yield* Effect.all(
        Array.from({ length: 10 }, (_, index) =>
          Effect.exit((index % 2 === 0 ? one : two).policy.admit(callers[index % 2]!, pro, 0.134)),
        ),
        { concurrency: "unbounded" },
      )
      expect(exits.filter(Exit.isSuccess)).toHaveLength(3)
    }).pipe(Effect.scoped),
  )
})
