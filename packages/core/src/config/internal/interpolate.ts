/**
 * `${VAR}` and `${VAR:-default}` in a YAML document's scalars, from an environment. Unset required
 * variables are collected with their positions; substituted values are remembered so messages can
 * redact them.
 */
import { type Document, parse, visit } from "yaml"

const variablePattern = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

export interface Interpolation {
  readonly missing: Array<{ readonly variable: string; readonly offset: number }>
  /** Values that came from the environment, to keep out of messages. */
  readonly substituted: Set<string>
}

export const interpolate = (
  document: Document,
  env: Readonly<Record<string, string | undefined>>,
  /** What an unset required variable becomes (offline checks); `""` by default. It is still listed as missing. */
  placeholder = "",
): Interpolation => {
  const result: Interpolation = { missing: [], substituted: new Set() }
  visit(document, {
    Scalar(key, node) {
      if (key === "key" || typeof node.value !== "string" || !node.value.includes("${")) return
      // An unquoted scalar that is exactly one `${VAR}` takes the type its value has (price: ${PRICE} → 0.05).
      const typed = node.type === "PLAIN" && /^\$\{[^}]+\}$/.test(node.value)
      node.value = node.value.replace(variablePattern, (_match, variable: string, fallback: string | undefined) => {
        const value = env[variable]
        if (value !== undefined && value !== "") {
          if (value.length >= 4) result.substituted.add(value)
          return value
        }
        if (fallback !== undefined) return fallback
        result.missing.push({ variable, offset: node.range?.[0] ?? 0 })
        return placeholder
      })
      if (typed && typeof node.value === "string" && node.value !== "") {
        const parsed: unknown = parse(node.value)
        if (typeof parsed === "number" || typeof parsed === "boolean") node.value = parsed
      }
    },
  })
  return result
}
