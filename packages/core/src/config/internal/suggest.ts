/**
 * Did-you-mean hints for unknown keys and names.
 */
import type { Schema } from "effect"

const distance = (left: string, right: string): number => {
  const previous = Array.from({ length: right.length + 1 }, (_, index) => index)
  for (let i = 1; i <= left.length; i++) {
    let diagonal = previous[0]!
    previous[0] = i
    for (let j = 1; j <= right.length; j++) {
      const above = previous[j]!
      previous[j] = Math.min(above + 1, previous[j - 1]! + 1, diagonal + (left[i - 1] === right[j - 1] ? 0 : 1))
      diagonal = above
    }
  }
  return previous[right.length]!
}

export const suggestion = (word: string, candidates: ReadonlyArray<string>): string => {
  const best = candidates
    .map((candidate) => ({ candidate, score: distance(word, candidate) }))
    .filter((entry) => entry.score <= Math.max(2, Math.floor(entry.candidate.length / 3)))
    .sort((left, right) => left.score - right.score)[0]
  return best === undefined ? "" : `; did you mean "${best.candidate}"?`
}

/** Property names a Schema's top-level struct accepts, for did-you-mean hints. */
export const knownKeys = (schema: Schema.Top): ReadonlyArray<string> => {
  const ast = schema.ast as { _tag: string; propertySignatures?: ReadonlyArray<{ name: PropertyKey }> }
  return ast._tag === "Objects" ? (ast.propertySignatures ?? []).map((property) => String(property.name)) : []
}
