/**
 * Faults the simulator can inject, as data: scripted (the next answers on a route, in order — for tests)
 * or drawn at random with a probability per kind (`429=0.2,503=0.05,hang=0.01`, optionally per route:
 * `openrouter:402=0.1`). Each route renders a fault in its own upstream's wire shape.
 *
 * @since 0.1.0
 */
import type { Random } from "./Random.ts"

export const faultKinds = [
  "ok",
  "429",
  "429-daily",
  "500",
  "502",
  "503",
  "504",
  "400",
  "401",
  "402",
  "403",
  "hang",
  "slow",
  "malformed",
  "html",
  "safety",
  "blocked",
  "text-only",
  "truncated",
  "markdown-image",
  "error-in-200",
  "jpeg",
  "echo-key",
  "echo-key-200",
] as const

export type FaultKind = (typeof faultKinds)[number]

export const routeNames = [
  "gemini",
  "proxy-gemini",
  "vertex",
  "vertex-express",
  "openrouter",
  "proxy-chat",
  "gemini-batch",
  "files",
] as const

export type RouteName = (typeof routeNames)[number]

/** One probabilistic rule: `kind` with `probability`, on `route` or every route. */
export interface FaultRule {
  readonly kind: FaultKind
  readonly probability: number
  readonly route?: RouteName
}

const isFaultKind = (text: string): text is FaultKind => (faultKinds as ReadonlyArray<string>).includes(text)
const isRouteName = (text: string): text is RouteName => (routeNames as ReadonlyArray<string>).includes(text)

/** Parse `429=0.2,503=0.05,hang=0.01` (and `route:kind=p`). Throws a readable Error on a bad entry. */
export const parseFaults = (spec: string): ReadonlyArray<FaultRule> =>
  spec
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .map((entry) => {
      const match = /^(?:([a-z-]+):)?([a-z0-9-]+)=(\d*\.?\d+)$/.exec(entry)
      if (match === null) throw new Error(`bad fault "${entry}": expected kind=probability, e.g. 429=0.2`)
      const [, route, kind, probability] = match
      if (!isFaultKind(kind!)) throw new Error(`unknown fault kind "${kind}" (known: ${faultKinds.join(", ")})`)
      if (route !== undefined && !isRouteName(route))
        throw new Error(`unknown route "${route}" (known: ${routeNames.join(", ")})`)
      const value = Number(probability)
      if (!(value >= 0 && value <= 1)) throw new Error(`fault probability must be between 0 and 1, got ${probability}`)
      return {
        kind: kind as FaultKind,
        probability: value,
        ...(route === undefined ? {} : { route: route as RouteName }),
      }
    })

/** Scripts and rules together: which fault (or `ok`) the next call on a route gets. */
export class FaultPlan {
  private readonly scripts = new Map<string, Array<FaultKind>>()
  private readonly rules: ReadonlyArray<FaultRule>
  private readonly random: Random
  constructor(rules: ReadonlyArray<FaultRule>, random: Random) {
    this.rules = rules
    this.random = random
  }

  /** Queue `faults` as the next answers on `route` (`*` for any route). */
  script(route: RouteName | "*", faults: ReadonlyArray<FaultKind>): void {
    for (const fault of faults) if (!isFaultKind(fault)) throw new Error(`unknown fault kind "${fault}"`)
    const queue = this.scripts.get(route) ?? []
    queue.push(...faults)
    this.scripts.set(route, queue)
  }

  clear(): void {
    this.scripts.clear()
  }

  /** The fault for the next call on `route`: scripted first, then drawn. */
  next(route: RouteName): FaultKind {
    const scripted = this.scripts.get(route)?.shift() ?? this.scripts.get("*")?.shift()
    if (scripted !== undefined) return scripted
    for (const rule of this.rules) {
      if (rule.route !== undefined && rule.route !== route) continue
      if (this.random() < rule.probability) return rule.kind
    }
    return "ok"
  }
}
