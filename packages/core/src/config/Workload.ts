/**
 * A workload: what a month of requests looks like, for `peel estimate --workload FILE`. A YAML file,
 * decoded strictly with a Schema; every problem is reported as `FILE:LINE:COL: message`, like a pipeline.
 *
 * ```yaml
 * version: 1
 * name: brief
 * requestsPerMonth: 10000
 * urgency: { batch: 40%, realtime: 60% }
 * priority: { high: 20%, normal: 55%, low: 25% }
 * use: { hero: 5%, print: 3%, large-display: 2%, thumbnail: 15%, social: 30%, blog: 25%, email: 10%, web: 10% }
 * aspectRatio: { "1:1": 100% }
 * repeats: { share: 20%, within: 1h }
 * ```
 *
 * Shares are fractions (`0.4`) or percentages (`40%`); each distribution must add up to 100%. The
 * distributions are taken as independent: a workload expands into one request class per combination,
 * weighted by the product of its shares.
 *
 * @since 0.3.0
 */
import { AspectRatios } from "@peel/contract/Catalog"
import { ConfigError, ConfigProblem } from "@peel/contract/Errors"
import { flattenIssues, withFound } from "@peel/contract/Issues"
import type { ImageRequest } from "@peel/contract/Request"
import * as Units from "@peel/contract/Units"
import { Effect, Result, Schema } from "effect"
import { LineCounter, parseDocument } from "yaml"
import * as Files from "../internal/Files.ts"
import { locate } from "./internal/yamlPositions.ts"

/** @deprecated use `Units.parseShare` from `@peel/contract` (one units parser); kept for one release. @category parsing */
export const parseShare = Units.parseShare

const Share = Units.Share

/** Shares of some of `keys` (the ones left out have none). */
const sharesFor = <const Keys extends ReadonlyArray<string>>(keys: Keys) =>
  Schema.Struct(
    Object.fromEntries(keys.map((key) => [key, Schema.optional(Share)])) as {
      readonly [K in Keys[number]]: Schema.optional<typeof Share>
    },
  )

/** The workload file. @category schemas */
export const WorkloadFile = Schema.Struct({
  $schema: Schema.optional(Schema.String),
  version: Schema.Literal(1).annotate({ description: "Workload format version; always 1" }),
  name: Schema.String,
  description: Schema.optional(Schema.String),
  requestsPerMonth: Schema.Number.check(Schema.isGreaterThan(0)).annotate({ description: "Requests a month" }),
  urgency: Schema.optional(sharesFor(["realtime", "batch"])).annotate({
    description: "Share of each urgency (default: all realtime)",
  }),
  priority: Schema.optional(sharesFor(["high", "normal", "low"])).annotate({
    description: "Share of each priority (default: all normal)",
  }),
  use: Schema.optional(Schema.Record(Schema.String, Share)).annotate({
    description: "Share of each intended use (hero, print, thumbnail, ...; default: none given)",
  }),
  aspectRatio: Schema.optional(sharesFor(AspectRatios)).annotate({
    description: "Share of each aspect ratio (default: none given, the pipeline's default)",
  }),
  repeats: Schema.optional(
    Schema.Struct({
      share: Share.annotate({ description: "Share of requests that repeat a prompt seen shortly before" }),
      within: Units.DurationMillis.annotate({ description: "How soon after the first (e.g. 1h)" }),
    }),
  ).annotate({ description: "Requests that repeat an earlier prompt (a cache with at least this TTL answers them)" }),
})

/** A decoded workload. @category model */
export interface Workload {
  readonly file: string
  readonly name: string
  readonly description?: string | undefined
  readonly requestsPerMonth: number
  readonly repeats?: { readonly share: number; readonly withinMillis: number } | undefined
  /** One request class per combination of the distributions, with its requests a month. */
  readonly classes: ReadonlyArray<{ readonly request: ImageRequest; readonly perMonth: number }>
}

const distributions = ["urgency", "priority", "use", "aspectRatio"] as const

const sharesOf = (
  record: Readonly<Record<string, number | string | undefined>> | undefined,
): Array<readonly [string, number]> =>
  record === undefined
    ? []
    : Object.entries(record).flatMap(([key, value]) =>
        value === undefined ? [] : [[key, parseShare(value) ?? 0] as const],
      )

/**
 * Load and check a workload file; every problem with its line and column.
 *
 * @category loading
 */
export const load = Effect.fn("Workload.load")(function* (file: string) {
  const problem = (line: number, column: number, message: string) =>
    new ConfigProblem({ file, line, column, message, severity: "error" })
  const text = yield* Files.readText(file, "workload").pipe(
    Effect.provide(Files.layerNode),
    Effect.mapError((message) => new ConfigError({ file, problems: [problem(1, 1, message)] })),
  )
  const lineCounter = new LineCounter()
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  if (document.errors.length > 0)
    return yield* new ConfigError({
      file,
      problems: document.errors.map((error) => {
        const position = lineCounter.linePos(error.pos[0])
        return problem(position.line, position.col, `not valid YAML: ${error.message.split("\n")[0]}`)
      }),
    })
  const raw = document.toJS({ maxAliasCount: 100 }) as unknown
  const problems: Array<ConfigProblem> = []
  const report = (path: ReadonlyArray<PropertyKey>, message: string, preferKey = false) => {
    const { line, column } = locate(document, lineCounter, path, preferKey)
    problems.push(problem(line, column, message))
  }
  const decoded = Schema.decodeUnknownResult(WorkloadFile)(raw, { errors: "all", onExcessProperty: "error" })
  if (Result.isFailure(decoded)) {
    for (const found of flattenIssues(decoded.failure)) {
      const issue = withFound(found, raw)
      const where = issue.path.map(String).join(".") || "top level"
      if (issue.message.includes("excess property"))
        report(issue.path, `unknown key "${String(issue.path[issue.path.length - 1])}" at ${where}`, true)
      else if (issue.message === "Missing key")
        report(issue.path.slice(0, -1), `missing required key "${String(issue.path[issue.path.length - 1])}"`)
      else report(issue.path, `${where}: ${issue.message}`)
    }
    return yield* new ConfigError({ file, problems })
  }
  const workload = decoded.success
  for (const key of distributions) {
    const shares = sharesOf(workload[key])
    if (shares.length === 0) continue
    const sum = shares.reduce((total, [, share]) => total + share, 0)
    if (Math.abs(sum - 1) > 1e-6)
      report([key], `${key}: the shares add up to ${(sum * 100).toFixed(2).replace(/\.?0+$/, "")}%, not 100%`)
  }
  if (problems.length > 0) return yield* new ConfigError({ file, problems })

  const axes = distributions.map((key) => {
    const shares = sharesOf(workload[key])
    return shares.length === 0 ? [[undefined, 1] as const] : shares
  })
  const classes: Array<{ request: ImageRequest; perMonth: number }> = []
  for (const [urgency, pu] of axes[0]!)
    for (const [priority, pp] of axes[1]!)
      for (const [use, pe] of axes[2]!)
        for (const [aspectRatio, pa] of axes[3]!) {
          const perMonth = workload.requestsPerMonth * pu * pp * pe * pa
          if (perMonth === 0) continue
          const parts = [use ?? "any", priority ?? "normal", urgency ?? "realtime", aspectRatio ?? ""].filter(
            (part) => part !== "",
          )
          classes.push({
            request: {
              id: parts.join("-").replace(/[^A-Za-z0-9._-]/g, "_"),
              prompt: `workload ${workload.name}: ${parts.join(" ")}`,
              ...(use === undefined ? {} : { use }),
              ...(priority === undefined ? {} : { priority: priority as ImageRequest["priority"] & string }),
              ...(urgency === undefined ? {} : { urgency: urgency as ImageRequest["urgency"] & string }),
              ...(aspectRatio === undefined
                ? {}
                : { aspectRatio: aspectRatio as ImageRequest["aspectRatio"] & string }),
            },
            perMonth,
          })
        }
  const result: Workload = {
    file,
    name: workload.name,
    ...(workload.description === undefined ? {} : { description: workload.description }),
    requestsPerMonth: workload.requestsPerMonth,
    ...(workload.repeats === undefined
      ? {}
      : { repeats: { share: parseShare(workload.repeats.share) ?? 0, withinMillis: workload.repeats.within } }),
    classes,
  }
  return result
})
