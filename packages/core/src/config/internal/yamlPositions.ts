/**
 * Mapping a path inside a parsed YAML document back to a line and column, for `FILE:LINE:COL` findings.
 */
import { type Document, isMap, isPair, isScalar, isSeq, type LineCounter, type Node } from "yaml"

export interface Located {
  readonly line: number
  readonly column: number
}

export const locate = (
  document: Document,
  lineCounter: LineCounter,
  path: ReadonlyArray<PropertyKey>,
  preferKey: boolean,
): Located => {
  // Walk as deep as the path exists; report the deepest node found (a missing key points at its parent).
  let node: unknown = document.contents
  let best: Node | undefined = document.contents ?? undefined
  let keyNode: Node | undefined
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(segment),
      )
      if (pair === undefined) break
      keyNode = isScalar(pair.key) ? pair.key : undefined
      node = pair.value
      best = (pair.value as Node | null) ?? keyNode
    } else if (isSeq(node) && typeof segment === "number") {
      const item = node.items[segment]
      if (item === undefined) break
      keyNode = undefined
      node = item
      best = item as Node
    } else break
  }
  const target = preferKey && keyNode !== undefined ? keyNode : best
  const offset = target?.range?.[0] ?? 0
  const position = lineCounter.linePos(offset)
  return { line: position.line, column: position.col }
}
