import { type Schema, SchemaIssue } from "effect"

/** One Schema problem: where in the document (a path of keys) and what was wrong. */
export interface PathIssue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
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
