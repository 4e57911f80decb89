import { type Schema, SchemaIssue } from "effect"

/** One Schema problem: where in the document (a path of keys) and what was wrong. */
export interface PathIssue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

/** A short description of a found value for messages (strings quoted and cut, containers named). */
export const describeValue = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)
  if (Array.isArray(value)) return "a list"
  if (typeof value === "object" && value !== null) return "a mapping"
  return String(value)
}

const valueAt = (
  root: unknown,
  path: ReadonlyArray<PropertyKey>,
): { readonly found: boolean; readonly value?: unknown } => {
  let node: unknown = root
  for (const segment of path) {
    if (typeof node !== "object" || node === null || !Object.hasOwn(node, segment)) return { found: false }
    node = (node as Record<PropertyKey, unknown>)[segment]
  }
  return { found: true, value: node }
}

/** Drop "| undefined" from optional fields' messages and say what was found when Effect did not. */
export const withFound = (issue: PathIssue, root: unknown): PathIssue => {
  const message = issue.message.replace(/ \| undefined/g, "")
  if (!message.startsWith("Expected") || message.includes(", got ")) return { ...issue, message }
  const at = valueAt(root, issue.path)
  return at.found ? { ...issue, message: `${message}, got ${describeValue(at.value)}` } : { ...issue, message }
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** Flatten a SchemaError into every problem it holds, each with its path. */
export const flattenIssues = (error: Schema.SchemaError): ReadonlyArray<PathIssue> =>
  formatter(error.issue).issues.map((issue) => ({
    path: (issue.path ?? []).map((segment) =>
      typeof segment === "object" && segment !== null ? (segment as { key: PropertyKey }).key : segment,
    ),
    message: issue.message,
  }))
