/**
 * The hedge budget: hedges may add at most `share` of the calls made over the last `window` (one hedge is
 * always allowed to open a window, so a quiet runner can still hedge its first slow call). Calls and
 * hedges are counted per key, so several processes sharing a store share one budget. A network store
 * implements it atomically (two Redis sorted sets and a script), with {@link allows} as the rule.
 *
 * @since 0.4.0
 */
import { Clock, Context, Effect, Layer } from "effect"

/** @category model */
export interface HedgeBudgetShape {
  /** Count one call made under `key` (kept for `windowMillis`). */
  readonly recordCall: (key: string, windowMillis: number) => Effect.Effect<void>
  /** Take one hedge from `key`'s budget if it allows one now. Atomic. */
  readonly tryHedge: (key: string, share: number, windowMillis: number) => Effect.Effect<boolean>
}

/** @category services */
export class HedgeBudget extends Context.Service<HedgeBudget, HedgeBudgetShape>()("@peel/core/state/HedgeBudget") {}

/** Whether one more hedge fits, given the calls and hedges in the window. @category rules */
export const allows = (calls: number, hedges: number, share: number): boolean =>
  share > 0 && hedges + 1 <= share * calls + 1

const dropBefore = (times: Array<number>, since: number) => {
  let drop = 0
  while (drop < times.length && times[drop]! < since) drop++
  if (drop > 0) times.splice(0, drop)
}

/** One process's hedge budgets, in memory. @category constructors */
export const makeMemory: Effect.Effect<HedgeBudgetShape> = Effect.sync(() => {
  const budgets = new Map<string, { readonly calls: Array<number>; readonly hedges: Array<number> }>()
  const budgetOf = (key: string) => {
    const found = budgets.get(key)
    if (found !== undefined) return found
    const created = { calls: [], hedges: [] }
    budgets.set(key, created)
    return created
  }
  return {
    recordCall: (key, windowMillis) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const budget = budgetOf(key)
        dropBefore(budget.calls, now - windowMillis)
        budget.calls.push(now)
      }),
    tryHedge: (key, share, windowMillis) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const budget = budgetOf(key)
        dropBefore(budget.calls, now - windowMillis)
        dropBefore(budget.hedges, now - windowMillis)
        if (!allows(budget.calls.length, budget.hedges.length, share)) return false
        budget.hedges.push(now)
        return true
      }),
  }
})

/** @category layers */
export const layerMemory: Layer.Layer<HedgeBudget> = Layer.effect(HedgeBudget, makeMemory)
