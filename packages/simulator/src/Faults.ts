/**
 * Faults the simulator can inject, as data: scripted (the next answers on a route, in order — for tests)
 * or drawn at random with a probability per kind (`429=0.2,503=0.05,hang=0.01`), optionally for one
 * route (`openrouter:402=0.1`), one model (`503@gemini-3-pro-image=1`) or both
 * (`vertex:429@gemini-3-pro-image=0.5`). Each route renders a fault in its own upstream's wire shape.
 *
 * @since 0.1.0
 */
import { Catalog } from "@peel/contract"
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

/** One probabilistic rule: `kind` with `probability`, on `route` (or every route), for `model` (or every model). */
export interface FaultRule {
  readonly kind: FaultKind
  readonly probability: number
  readonly route?: RouteName
  /** Google's model id (an alias or OpenRouter's `google/` prefix is accepted and resolved). */
  readonly model?: string
}

/** Which calls a script applies to, beyond its route: only calls for `model`. */
export interface ScriptScope {
  readonly model?: string
}

const isFaultKind = (text: string): text is FaultKind => (faultKinds as ReadonlyArray<string>).includes(text)
const isRouteName = (text: string): text is RouteName => (routeNames as ReadonlyArray<string>).includes(text)

/**
 * Google's id for a model named in a fault rule or script: `google/` stripped, aliases resolved. Throws a
 * readable Error for a model the catalog does not know (a typo would otherwise never match any call).
 */
export const faultModel = (name: string): string => {
  const bare = name.trim().replace(/^google\//, "")
  if (Catalog.findModel(bare) === undefined)
    throw new Error(`unknown model "${name}" in a fault (known: ${Object.keys(Catalog.models).join(", ")})`)
  return Catalog.resolveModel(bare)
}

/**
 * Parse `429=0.2,503=0.05,hang=0.01`; each entry is `[route:]kind[@model]=probability`, e.g.
 * `openrouter:402=0.1`, `503@gemini-3-pro-image=1`, `vertex:429@gemini-3-pro-image=0.5`. Throws a readable
 * Error on a bad entry.
 */
export const parseFaults = (spec: string): ReadonlyArray<FaultRule> =>
  spec
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .map((entry) => {
      const match = /^(?:([a-z-]+):)?([a-z0-9-]+)(?:@([A-Za-z0-9._/-]+))?=(\d*\.?\d+)$/.exec(entry)
      if (match === null) {
        const scope = /^([A-Za-z0-9._/-]+):([a-z0-9-]+)=/.exec(entry)
        if (scope !== null && Catalog.findModel(scope[1]!.replace(/^google\//, "")) !== undefined)
          throw new Error(
            `bad fault "${entry}": "${scope[1]}" is a model, not a route; write ${scope[2]}@${scope[1]}=probability`,
          )
        throw new Error(
          `bad fault "${entry}": expected [route:]kind[@model]=probability, e.g. 429=0.2 or 503@gemini-3-pro-image=1`,
        )
      }
      const [, route, kind, model, probability] = match
      if (!isFaultKind(kind!)) throw new Error(`unknown fault kind "${kind}" (known: ${faultKinds.join(", ")})`)
      if (route !== undefined && !isRouteName(route))
        throw new Error(`unknown route "${route}" (known: ${routeNames.join(", ")})`)
      const value = Number(probability)
      if (!(value >= 0 && value <= 1)) throw new Error(`fault probability must be between 0 and 1, got ${probability}`)
      return {
        kind: kind as FaultKind,
        probability: value,
        ...(route === undefined ? {} : { route: route as RouteName }),
        ...(model === undefined ? {} : { model: faultModel(model) }),
      }
    })

/** Rules as given (a spec string or parsed rules), checked and with their models resolved. */
export const faultRules = (faults: string | ReadonlyArray<FaultRule> | undefined): ReadonlyArray<FaultRule> => {
  if (faults === undefined) return []
  if (typeof faults === "string") return parseFaults(faults)
  return faults.map((rule) => {
    if (!isFaultKind(rule.kind)) throw new Error(`unknown fault kind "${rule.kind}"`)
    if (rule.route !== undefined && !isRouteName(rule.route)) throw new Error(`unknown route "${rule.route}"`)
    if (!(rule.probability >= 0 && rule.probability <= 1))
      throw new Error(`fault probability must be between 0 and 1, got ${rule.probability}`)
    return rule.model === undefined ? rule : { ...rule, model: faultModel(rule.model) }
  })
}

/** Scripts and rules together: which fault (or `ok`) the next call on a route (for a model) gets. */
export class FaultPlan {
  /** Queues keyed by `route` or `route@model` (`*` for any route). */
  private readonly scripts = new Map<string, Array<FaultKind>>()
  private rules: ReadonlyArray<FaultRule>
  private readonly random: Random
  constructor(rules: ReadonlyArray<FaultRule>, random: Random) {
    this.rules = faultRules(rules)
    this.random = random
  }

  /** Queue `faults` as the next answers on `route` (`*` for any route), only for `scope.model` if given. */
  script(route: RouteName | "*", faults: ReadonlyArray<FaultKind>, scope: ScriptScope = {}): void {
    if (route !== "*" && !isRouteName(route)) throw new Error(`unknown route "${route}"`)
    for (const fault of faults) if (!isFaultKind(fault)) throw new Error(`unknown fault kind "${fault}"`)
    const key = scope.model === undefined ? route : `${route}@${faultModel(scope.model)}`
    const queue = this.scripts.get(key) ?? []
    queue.push(...faults)
    this.scripts.set(key, queue)
  }

  /** Replace the probabilistic rules (scripts are kept). */
  setRules(rules: ReadonlyArray<FaultRule>): void {
    this.rules = faultRules(rules)
  }

  clear(): void {
    this.scripts.clear()
  }

  /**
   * The fault for the next call on `route` for `model` (Google's id): scripted first — for this route and
   * model, any route and this model, this route, any route — then drawn from the rules that match.
   */
  next(route: RouteName, model?: string): FaultKind {
    const take = (key: string) => this.scripts.get(key)?.shift()
    const scripted =
      (model === undefined ? undefined : (take(`${route}@${model}`) ?? take(`*@${model}`))) ?? take(route) ?? take("*")
    if (scripted !== undefined) return scripted
    for (const rule of this.rules) {
      if (rule.route !== undefined && rule.route !== route) continue
      if (rule.model !== undefined && rule.model !== model) continue
      if (this.random() < rule.probability) return rule.kind
    }
    return "ok"
  }
}
