/**
 * Loading a pipeline file: YAML parsed with positions, `${VAR}` / `${VAR:-default}` interpolated, the
 * document decoded strictly against the pipeline Schema, each channel block against its plugin's Schema
 * and each stage against its stage's Schema. Every problem is collected and reported as
 * `FILE:LINE:COL: message` — a typo like `retires:` never vanishes, and every unset variable is named.
 *
 * @since 0.1.0
 */
import { existsSync, readFileSync, statSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, isAbsolute, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Result, Schema } from "effect"
import {
  type Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parse,
  parseDocument,
  visit,
} from "yaml"
import { retirementWarning } from "./Catalog.ts"
import type { ChannelPlugin } from "./Channel.ts"
import { ConfigError, ConfigProblem } from "./Errors.ts"
import { flattenIssues, type PathIssue, withFound } from "./internal/issues.ts"
import { checkPlugin, decodeConfig, strict } from "./Plugin.ts"
import * as Stages from "./Stages.ts"

/** A channel as declared: its name, the plugin that builds it, and its decoded configuration. @category model */
export interface ChannelDeclaration {
  readonly name: string
  readonly plugin: ChannelPlugin<any>
  readonly pluginName: string
  readonly config: unknown
}

/** A stage as declared: its definition and decoded configuration. @category model */
export interface StageDeclaration {
  readonly definition: Stages.StageDefinition<any>
  readonly config: unknown
}

/** A loaded, fully validated pipeline. Immutable: the runner never changes it. @category model */
export interface Pipeline {
  readonly file: string
  readonly name: string
  readonly description?: string
  readonly channels: ReadonlyArray<ChannelDeclaration>
  readonly stages: ReadonlyArray<StageDeclaration>
  /** Findings that do not stop the pipeline (retired model ids, unknown models). */
  readonly warnings: ReadonlyArray<ConfigProblem>
}

/** How to load. @category model */
export interface LoadOptions {
  /** Environment for `${VAR}`; `process.env` by default. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Plugins known by name up front (`plugin: NAME` looks here before importing `@peel/channel-NAME`). */
  readonly plugins?: Readonly<Record<string, ChannelPlugin<any>>>
  /** Extra module locations (file paths or URLs) to resolve plugin packages from, after the pipeline's folder and the cwd. */
  readonly resolveFrom?: ReadonlyArray<string>
  /** ISO date used for retirement warnings; today by default. */
  readonly today?: string
}

// ---------------------------------------------------------------------------------------------------
// the top-level Schema (channel blocks and stages are decoded in a second pass, by their own Schemas)

const ChannelBlock = Schema.Record(Schema.String, Schema.Unknown)

/** @category schemas */
export const PipelineShape = Schema.Struct({
  $schema: Schema.optional(Schema.String),
  version: Schema.Literal(1).annotate({ description: "Pipeline format version; always 1" }),
  name: Schema.String.annotate({ description: "Name shown in reports" }),
  description: Schema.optional(Schema.String),
  channels: Schema.Record(Schema.String, ChannelBlock).annotate({
    description: "Upstream channels by name; each block has `plugin` plus the plugin's own settings",
  }),
  stages: Schema.Array(Schema.Record(Schema.String, Schema.Unknown)).annotate({
    description: "Stages in order; each wraps everything after it; `generate` is innermost",
  }),
})

// ---------------------------------------------------------------------------------------------------
// positions

interface Located {
  readonly line: number
  readonly column: number
}

const locate = (
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

// ---------------------------------------------------------------------------------------------------
// interpolation

const variablePattern = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

interface Interpolation {
  readonly missing: Array<{ readonly variable: string; readonly offset: number }>
  /** Values that came from the environment, to keep out of messages. */
  readonly substituted: Set<string>
}

const interpolate = (document: Document, env: Readonly<Record<string, string | undefined>>): Interpolation => {
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
        return ""
      })
      if (typed && typeof node.value === "string" && node.value !== "") {
        const parsed: unknown = parse(node.value)
        if (typeof parsed === "number" || typeof parsed === "boolean") node.value = parsed
      }
    },
  })
  return result
}

// ---------------------------------------------------------------------------------------------------
// plugins

const firstPartyPrefix = "@peel/channel-"

const isPath = (specifier: string): boolean =>
  specifier.startsWith("./") || specifier.startsWith("../") || isAbsolute(specifier)

/** The first candidate package that resolves from any of the base locations. */
const firstResolved = (candidates: ReadonlyArray<string>, bases: ReadonlyArray<string>): string | undefined => {
  for (const candidate of candidates)
    for (const base of bases) {
      try {
        return createRequire(base).resolve(candidate)
      } catch {
        // not resolvable from this base; try the next
      }
    }
  return undefined
}

const importPlugin = (
  specifier: string,
  file: string,
  options: LoadOptions,
): Effect.Effect<ChannelPlugin<any>, string> => {
  const known = options.plugins?.[specifier]
  if (known !== undefined) return Effect.succeed(known)
  // `plugin: NAME` is `@peel/channel-NAME` first, then a package called NAME; anything with a scope or
  // a slash is a package name as written.
  const candidates =
    isPath(specifier) || specifier.includes("/") || specifier.startsWith("@")
      ? [specifier]
      : [`${firstPartyPrefix}${specifier}`, specifier]
  const packageName = candidates[0]!
  return Effect.tryPromise({
    try: async () => {
      let location: string | undefined
      if (isPath(specifier)) {
        location = resolve(dirname(file), specifier)
        if (!existsSync(location)) throw new Error(`no file ${location}`)
      } else {
        const bases = [
          resolve(dirname(file), "noop.js"),
          resolve(process.cwd(), "noop.js"),
          ...(options.resolveFrom ?? []),
        ]
        location = firstResolved(candidates, bases)
        if (location === undefined) throw new Error(`cannot find package ${candidates.join(" or ")}`)
      }
      const module = (await import(pathToFileURL(location).href)) as { default?: unknown }
      const problem = checkPlugin(module.default)
      if (problem !== undefined) throw new Error(`${packageName} is not a Peel channel plugin: ${problem}`)
      return module.default as ChannelPlugin<any>
    },
    catch: (error) => `cannot load plugin "${specifier}": ${error instanceof Error ? error.message : String(error)}`,
  })
}

// ---------------------------------------------------------------------------------------------------
// did-you-mean

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

const suggestion = (word: string, candidates: ReadonlyArray<string>): string => {
  const best = candidates
    .map((candidate) => ({ candidate, score: distance(word, candidate) }))
    .filter((entry) => entry.score <= Math.max(2, Math.floor(entry.candidate.length / 3)))
    .sort((left, right) => left.score - right.score)[0]
  return best === undefined ? "" : `; did you mean "${best.candidate}"?`
}

/** Property names a Schema's top-level struct accepts, for did-you-mean hints. */
const knownKeys = (schema: Schema.Top): ReadonlyArray<string> => {
  const ast = schema.ast as { _tag: string; propertySignatures?: ReadonlyArray<{ name: PropertyKey }> }
  return ast._tag === "Objects" ? (ast.propertySignatures ?? []).map((property) => String(property.name)) : []
}

// ---------------------------------------------------------------------------------------------------
// load

const readSource = (file: string): Result.Result<string, string> => {
  if (!existsSync(file)) return Result.fail("file not found")
  if (statSync(file).isDirectory()) return Result.fail("is a directory, not a pipeline file")
  const text = readFileSync(file, "utf8")
  if (text.trim() === "")
    return Result.fail("file is empty; expected a pipeline document (version, name, channels, stages)")
  return Result.succeed(text)
}

/**
 * Load and validate a pipeline file. Fails with a {@link ConfigError} holding every problem found, each
 * with file, line and column; warnings (retired model ids) are returned on the pipeline.
 *
 * @category loading
 */
export const load = Effect.fn("Pipeline.load")(function* (path: string, options: LoadOptions = {}) {
  const file = path
  const absolute = resolve(path)
  const problems: Array<ConfigProblem> = []
  const warnings: Array<ConfigProblem> = []
  const fail = (line: number, column: number, message: string) =>
    new ConfigError({ file, problems: [new ConfigProblem({ file, line, column, message, severity: "error" })] })

  const source = readSource(absolute)
  if (Result.isFailure(source)) return yield* fail(1, 1, source.failure)

  const lineCounter = new LineCounter()
  const document = parseDocument(source.success, { lineCounter, prettyErrors: false, uniqueKeys: true })
  if (document.errors.length > 0) {
    return yield* new ConfigError({
      file,
      problems: document.errors.map((error) => {
        const position = lineCounter.linePos(error.pos[0])
        return new ConfigProblem({
          file,
          line: position.line,
          column: position.col,
          message: `not valid YAML: ${error.message.split("\n")[0]}`,
          severity: "error",
        })
      }),
    })
  }
  if (!isMap(document.contents)) {
    return yield* fail(1, 1, "expected a mapping with version, name, channels and stages at the top level")
  }

  const interpolation = interpolate(document, options.env ?? process.env)
  const redact = (message: string): string => {
    let text = message
    for (const value of interpolation.substituted) text = text.split(value).join("<redacted>")
    return text
  }
  const report = (
    path: ReadonlyArray<PropertyKey>,
    message: string,
    severity: "error" | "warning" = "error",
    preferKey = false,
  ) => {
    const { line, column } = locate(document, lineCounter, path, preferKey)
    const problem = new ConfigProblem({ file, line, column, message: redact(message), severity })
    if (severity === "error") problems.push(problem)
    else warnings.push(problem)
  }
  const reportIssues = (
    prefix: ReadonlyArray<PropertyKey>,
    issues: ReadonlyArray<PathIssue>,
    keys: ReadonlyArray<string>,
    root: unknown,
  ) => {
    for (const found of issues) {
      const issue = withFound(found, root)
      const path = [...prefix, ...issue.path]
      const where = path.map(String).join(".")
      if (issue.message.includes("excess property")) {
        const key = String(issue.path[issue.path.length - 1] ?? "")
        report(
          path,
          `unknown key "${key}" at ${where}${suggestion(key, issue.path.length === 1 ? keys : [])}`,
          "error",
          true,
        )
      } else if (issue.message === "Missing key") {
        report(
          path.slice(0, -1),
          `missing required key "${String(path[path.length - 1])}" at ${path.slice(0, -1).map(String).join(".") || "top level"}`,
        )
      } else {
        report(path, `${where}: ${issue.message}`)
      }
    }
  }

  for (const { variable, offset } of interpolation.missing) {
    const position = lineCounter.linePos(offset)
    problems.push(
      new ConfigProblem({
        file,
        line: position.line,
        column: position.col,
        message: `environment variable ${variable} is not set (write \${${variable}:-default} to make it optional)`,
        severity: "error",
      }),
    )
  }

  const raw: unknown = document.toJS()
  const decoded = Schema.decodeUnknownResult(PipelineShape)(raw, strict)
  if (Result.isFailure(decoded)) reportIssues([], flattenIssues(decoded.failure), knownKeys(PipelineShape), raw)
  const shape = Result.isSuccess(decoded) ? decoded.success : (raw as Partial<typeof PipelineShape.Type>)

  // channels
  const channels: Array<ChannelDeclaration> = []
  const channelEntries =
    typeof shape.channels === "object" && shape.channels !== null ? Object.entries(shape.channels) : []
  for (const [name, block] of channelEntries) {
    if (typeof block !== "object" || block === null) continue
    const { plugin: pluginName, ...rest } = block as Record<string, unknown>
    if (typeof pluginName !== "string") {
      if (pluginName === undefined) report(["channels", name], `missing required key "plugin" at channels.${name}`)
      continue
    }
    const plugin = yield* Effect.result(importPlugin(pluginName, absolute, options))
    if (Result.isFailure(plugin)) {
      report(["channels", name, "plugin"], plugin.failure)
      continue
    }
    const config = decodeConfig(plugin.success, rest)
    if (Result.isFailure(config)) {
      reportIssues(["channels", name], config.failure, knownKeys(plugin.success.config as Schema.Top), rest)
      continue
    }
    channels.push({ name, plugin: plugin.success, pluginName, config: config.success })
  }
  const channelNames = channelEntries.map(([name]) => name)
  if (channelEntries.length === 0 && Result.isSuccess(decoded))
    report(["channels"], "channels: define at least one channel")

  // stages
  const stages: Array<StageDeclaration> = []
  const stageKeys = Stages.definitions.map((definition) => definition.key)
  const stageList = Array.isArray(shape.stages) ? shape.stages : []
  stageList.forEach((entry, index) => {
    if (typeof entry !== "object" || entry === null) return
    const keys = Object.keys(entry)
    if (keys.length !== 1) {
      report(
        ["stages", index],
        `stages.${index}: each stage is a mapping with exactly one key (one of ${stageKeys.join(", ")}), found ${keys.length}`,
      )
      return
    }
    const key = keys[0]!
    const definition = Stages.definitions.find((candidate) => candidate.key === key)
    if (definition === undefined) {
      report(
        ["stages", index, key],
        `unknown stage "${key}" (known: ${stageKeys.join(", ")})${suggestion(key, stageKeys)}`,
        "error",
        true,
      )
      return
    }
    if (stages.some((stage) => stage.definition.terminal === true)) {
      report(
        ["stages", index, key],
        `stage "${key}" comes after "generate", which is innermost: move it above`,
        "error",
        true,
      )
      return
    }
    const value = (entry as Record<string, unknown>)[key] ?? {}
    const config = Schema.decodeUnknownResult(definition.schema)(value, strict)
    if (Result.isFailure(config)) {
      reportIssues(["stages", index, key], flattenIssues(config.failure), knownKeys(definition.schema), value)
      return
    }
    for (const finding of definition.check?.(config.success, { channelNames }) ?? []) {
      report(
        ["stages", index, key, ...finding.path],
        `stages.${index}.${key}.${finding.path.join(".")}: ${finding.message}`,
        finding.severity,
      )
    }
    stages.push({ definition, config: config.success })
  })

  // retired model ids anywhere a model is named
  const today = options.today ?? new Date().toISOString().slice(0, 10)
  visit(document, {
    Pair(_key, pair) {
      if (!isScalar(pair.value) || typeof pair.value.value !== "string") return
      const warning = retirementWarning(pair.value.value, today)
      if (warning === undefined) return
      const position = lineCounter.linePos(pair.value.range?.[0] ?? 0)
      warnings.push(
        new ConfigProblem({ file, line: position.line, column: position.col, message: warning, severity: "warning" }),
      )
    },
  })

  if (problems.length > 0) {
    problems.sort((left, right) => left.line - right.line || left.column - right.column)
    return yield* new ConfigError({ file, problems })
  }
  const pipeline: Pipeline = {
    file,
    name: shape.name as string,
    ...(shape.description === undefined ? {} : { description: shape.description }),
    channels,
    stages,
    warnings,
  }
  return pipeline
})
