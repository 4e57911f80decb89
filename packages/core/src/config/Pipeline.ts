/**
 * Loading a pipeline file: YAML parsed with positions, `${VAR}` / `${VAR:-default}` interpolated, the
 * document decoded strictly against the pipeline Schema, each channel block against its plugin's Schema
 * and each stage against its stage's Schema. Every problem is collected and reported as
 * `FILE:LINE:COL: message` — a typo like `retires:` never vanishes, and every unset variable is named.
 *
 * @since 0.1.0
 */
import { resolve } from "node:path"
import { statusWarning } from "@peel/contract/Catalog"
import type { AnyChannelPlugin, Channel, MakeContext } from "@peel/contract/Channel"
import { ConfigError, ConfigProblem, type MissingSecret } from "@peel/contract/Errors"
import { flattenIssues, type PathIssue, withFound } from "@peel/contract/Issues"
import { checkAllowEntry } from "@peel/contract/Network"
import { strict } from "@peel/contract/Plugin"
import { DurationMillis } from "@peel/contract/Units"
import { Effect, Result, Schema, type Scope } from "effect"
import { isMap, isScalar, LineCounter, parseDocument, visit } from "yaml"
import type { DecodedStage } from "../engine/Stage.ts"
import * as Files from "../internal/Files.ts"
import { defaults as downloadDefaults, type NetworkOptions } from "../plan/Download.ts"
import { defaultLimits, type Limits } from "../plan/Plan.ts"
import { definitions } from "../stages/registry.ts"
import type { StateConfig } from "../state/State.ts"
import { interpolate } from "./internal/interpolate.ts"
import { importPlugin } from "./internal/resolvePlugin.ts"
import { knownKeys, suggestion } from "./internal/suggest.ts"
import { locate } from "./internal/yamlPositions.ts"

/** A channel as declared: its name, the plugin that builds it, and its decoded configuration. @category model */
export interface ChannelDeclaration {
  readonly name: string
  readonly plugin: AnyChannelPlugin
  readonly pluginName: string
  readonly config: unknown
  /** Build the channel from the decoded configuration. */
  readonly make: (context: MakeContext) => Effect.Effect<Channel, ConfigError | MissingSecret, Scope.Scope>
}

/** A stage as declared: decoded against its definition, ready to build. @category model */
export type StageDeclaration = DecodedStage

/** A loaded, fully validated pipeline. Immutable: the runner never changes it. @category model */
export interface Pipeline {
  readonly file: string
  readonly name: string
  readonly description?: string
  readonly channels: ReadonlyArray<ChannelDeclaration>
  readonly stages: ReadonlyArray<StageDeclaration>
  /** Limits on every request (prompt size). */
  readonly limits: Limits
  /** Findings that do not stop the pipeline (retired model ids, unknown models). */
  readonly warnings: ReadonlyArray<ConfigProblem>
  /** What reference-image downloads may reach, and within which bounds (`network:`). */
  readonly network?: NetworkOptions | undefined
  /** Where the pipeline's state lives (`state:`); memory when absent. */
  readonly state?: StateConfig | undefined
}

/** How to load. @category model */
export interface LoadOptions {
  /** Environment for `${VAR}`; `process.env` by default. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Plugins known by name up front (`plugin: NAME` looks here before importing `@peel/channel-NAME`). */
  readonly plugins?: Readonly<Record<string, AnyChannelPlugin>>
  /**
   * Plugins known by name but imported only when a pipeline names them (`plugin: NAME` looks here after
   * `plugins`, before resolving a package): a program that bundles its own first-party plugins (the `peel`
   * command) lists them here, so a pipeline never loads a second copy of them, or of `effect`, from
   * `node_modules`.
   */
  readonly pluginImports?: Readonly<Record<string, () => Promise<{ readonly default?: unknown }>>>
  /** Extra module locations (file paths or URLs) to resolve plugin packages from, after the pipeline's folder and the cwd. */
  readonly resolveFrom?: ReadonlyArray<string>
  /** ISO date used for retirement warnings; today by default. */
  readonly today?: string
  /**
   * Check structure, plugins and cross-references without secrets (`peel validate --offline`): an unset
   * `${VAR}` is not an error and stands in as a placeholder value.
   */
  readonly offline?: boolean
  /** Stores chosen on the command line (`--postgres URL`, `--redis URL`): they win over the pipeline's `state:` block. */
  readonly stores?: { readonly postgres?: string | undefined; readonly redis?: string | undefined } | undefined
}

/** What an unset variable becomes when loading offline. @category loading */
export const offlinePlaceholder = "offline-placeholder"

/** Variable names that hold secrets: never told "write ${VAR:-default} to make it optional". */
const secretName = /KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL/i

// ---------------------------------------------------------------------------------------------------
// the top-level Schema (channel blocks and stages are decoded in a second pass, by their own Schemas)

const ChannelBlock = Schema.Record(Schema.String, Schema.Unknown)

const AllowedHost = Schema.String.check(
  Schema.makeFilter((entry: string) => checkAllowEntry(entry) ?? true, { title: "host" }),
).annotate({ description: "A host name (images.internal), an address (127.0.0.1, ::1) or a range (10.0.0.0/8)" })

const NetworkBlock = Schema.Struct({
  allowHosts: Schema.optional(Schema.Array(AllowedHost)).annotate({
    description:
      "Hosts that reference-image URLs may reach although they are loopback, private or link-local (names, addresses or ranges); every other such target is refused, on each redirect too",
  }),
  downloadTimeout: Schema.optional(DurationMillis).annotate({
    description: `Time limit for one reference-image download, redirects and body included (default ${downloadDefaults.downloadTimeoutMillis / 1000}s)`,
  }),
  maxRedirects: Schema.optional(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))).annotate({
    description: `Most redirects followed for one download (default ${downloadDefaults.maxRedirects})`,
  }),
})

const StateBlock = Schema.Struct({
  store: Schema.optional(
    Schema.Literals(["memory"]).annotate({
      description:
        "Where circuit breakers, rate limits, quota pauses, concurrency slots, hedge budget and channel statistics live: memory (this process; the default)",
    }),
  ),
  postgres: Schema.optional(
    Schema.String.annotate({
      description:
        "A postgres:// URL (usually ${DATABASE_URL}): the spend ledger (every budget) and the work journal of bulk runs and batch work live there, shared by every worker that uses it",
    }),
  ),
  redis: Schema.optional(
    Schema.String.check(
      Schema.makeFilter((url) =>
        url === offlinePlaceholder || /^rediss?:\/\/[^\s]+$/.test(url)
          ? true
          : "expected a Redis URL (redis://host:port or rediss://…)",
      ),
    ),
  ).annotate({
    description:
      "A Redis URL (e.g. ${REDIS_URL}): breakers, rate limits, quota pauses, concurrency, hedge budget, channel statistics, budgets and the memory image cache live there, shared by every worker naming it (--redis URL wins)",
    examples: ["${REDIS_URL}", "redis://127.0.0.1:6379"],
  }),
  failOpen: Schema.optional(Schema.Boolean).annotate({
    description:
      "While Redis is unreachable, budgets spend against this worker's own ledger instead of refusing new requests (default false: no request starts without a reservation)",
  }),
})

/** The `state:` block as the runner takes it, the command line's stores winning. */
const stateOf = (
  block:
    | {
        readonly store?: "memory" | undefined
        readonly postgres?: string | undefined
        readonly redis?: string | undefined
        readonly failOpen?: boolean | undefined
      }
    | undefined,
  flags: LoadOptions["stores"],
): { readonly state?: StateConfig } => {
  const postgres = flags?.postgres ?? block?.postgres
  const redis = flags?.redis ?? block?.redis
  if (block === undefined && postgres === undefined && redis === undefined) return {}
  return {
    state: {
      store: block?.store ?? "memory",
      ...(postgres === undefined ? {} : { postgres }),
      ...(redis === undefined ? {} : { redis }),
      ...(block?.failOpen === undefined ? {} : { failOpen: block.failOpen }),
    },
  }
}

/** @category schemas */
export const PipelineShape = Schema.Struct({
  $schema: Schema.optional(Schema.String),
  version: Schema.Literal(1).annotate({ description: "Pipeline format version; always 1" }),
  name: Schema.String.annotate({ description: "Name shown in reports" }),
  description: Schema.optional(Schema.String),
  channels: Schema.Record(Schema.String, ChannelBlock).annotate({
    description: "Upstream channels by name; each block has `plugin` plus the plugin's own settings",
  }),
  limits: Schema.optional(
    Schema.Struct({
      maxPromptChars: Schema.optional(Schema.Int.check(Schema.isGreaterThan(0))).annotate({
        description: `Longest prompt accepted, in characters; longer ones are refused before any call (default ${defaultLimits.maxPromptChars})`,
      }),
    }),
  ).annotate({ description: "Limits on every request, checked before any call" }),
  network: Schema.optional(NetworkBlock).annotate({
    description:
      "What Peel may fetch over the network: hosts allowed for reference-image URLs, time and redirect limits",
  }),
  state: Schema.optional(StateBlock).annotate({
    description:
      "Where the pipeline's decision state lives (shared by every runner and process using the same store); default: memory",
  }),
  stages: Schema.Array(Schema.Record(Schema.String, Schema.Unknown)).annotate({
    description: "Stages in order; each wraps everything after it; `generate` is innermost",
  }),
})

// ---------------------------------------------------------------------------------------------------
// load

/** Where each channel block sits in the source, and whether it is marked `optional: true`. */
const channelBlockRanges = (
  document: ReturnType<typeof parseDocument>,
): ReadonlyArray<{
  readonly name: string
  readonly start: number
  readonly end: number
  readonly optional: boolean
}> => {
  const channels = document.get("channels", true)
  if (!isMap(channels)) return []
  return channels.items.flatMap((pair) => {
    const name = isScalar(pair.key) ? String(pair.key.value) : undefined
    const block = pair.value
    if (name === undefined || !isMap(block)) return []
    const optional = block.get("optional")
    return [
      {
        name,
        start: (pair.key as { range?: [number, number, number] }).range?.[0] ?? 0,
        end: block.range?.[2] ?? block.range?.[1] ?? 0,
        optional: optional === true || optional === "true",
      },
    ]
  })
}

const readSource = (file: string): Effect.Effect<string, string> =>
  Files.readText(file, "pipeline").pipe(
    Effect.provide(Files.layerNode),
    Effect.filterOrFail(
      (text) => text.trim() !== "",
      () => "file is empty; expected a pipeline document (version, name, channels, stages)",
    ),
  )

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

  const source = yield* readSource(absolute).pipe(Effect.result)
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

  const interpolation = interpolate(
    document,
    options.env ?? process.env,
    options.offline === true ? offlinePlaceholder : undefined,
  )
  // Channels marked `optional: true` whose required variables are unset are left out, with one warning.
  const channelRanges = channelBlockRanges(document)
  const channelOf = (offset: number) => channelRanges.find((range) => offset >= range.start && offset < range.end)?.name
  const optionalChannels = new Set(channelRanges.filter((range) => range.optional).map((range) => range.name))
  const leftOut = new Map<string, Array<string>>()
  if (options.offline !== true)
    for (const { variable, offset } of interpolation.missing) {
      const channel = channelOf(offset)
      if (channel !== undefined && optionalChannels.has(channel))
        leftOut.set(channel, [...(leftOut.get(channel) ?? []), variable])
    }
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

  for (const { variable, offset } of options.offline === true ? [] : interpolation.missing) {
    const channel = channelOf(offset)
    if (channel !== undefined && leftOut.has(channel)) continue
    const position = lineCounter.linePos(offset)
    const hint =
      channel !== undefined && channelRanges.length > 1
        ? `set it, or add "optional: true" to channels.${channel} to run without that channel`
        : secretName.test(variable)
          ? "set it"
          : channel === undefined
            ? `write \${${variable}:-default} to make it optional`
            : "set it"
    problems.push(
      new ConfigProblem({
        file,
        line: position.line,
        column: position.col,
        message: `environment variable ${variable} is not set (${hint})`,
        severity: "error",
      }),
    )
  }
  for (const [channel, variables] of leftOut) {
    const range = channelRanges.find((each) => each.name === channel)!
    const position = lineCounter.linePos(range.start)
    warnings.push(
      new ConfigProblem({
        file,
        line: position.line,
        column: position.col,
        message: `channels.${channel} left out: ${variables.join(", ")} ${variables.length === 1 ? "is" : "are"} not set (optional: true)`,
        severity: "warning",
      }),
    )
  }

  let raw: unknown
  try {
    raw = document.toJS({ maxAliasCount: 1000 })
  } catch (error) {
    // `yaml` refuses documents whose aliases expand exponentially ("billion laughs").
    let offset = 0
    visit(document, {
      Alias(_key, node) {
        offset = node.range?.[0] ?? 0
        return visit.BREAK
      },
    })
    const position = lineCounter.linePos(offset)
    return yield* fail(
      position.line,
      position.col,
      `the document's aliases expand too far (${error instanceof Error ? error.message : String(error)}); write the values out`,
    )
  }
  const decoded = Schema.decodeUnknownResult(PipelineShape)(raw, strict)
  if (Result.isFailure(decoded)) reportIssues([], flattenIssues(decoded.failure), knownKeys(PipelineShape), raw)
  const shape = Result.isSuccess(decoded) ? decoded.success : (raw as Partial<typeof PipelineShape.Type>)

  // channels
  const channels: Array<ChannelDeclaration> = []
  const channelEntries =
    typeof shape.channels === "object" && shape.channels !== null ? Object.entries(shape.channels) : []
  for (const [name, block] of channelEntries) {
    if (typeof block !== "object" || block === null) continue
    const { plugin: pluginName, optional, ...rest } = block as Record<string, unknown>
    if (optional !== undefined && typeof optional !== "boolean") {
      report(["channels", name, "optional"], `channels.${name}.optional: expected true or false`)
      continue
    }
    if (leftOut.has(name)) continue
    if (typeof pluginName !== "string") {
      if (pluginName === undefined) report(["channels", name], `missing required key "plugin" at channels.${name}`)
      continue
    }
    const plugin = yield* Effect.result(importPlugin(pluginName, absolute, options))
    if (Result.isFailure(plugin)) {
      report(["channels", name, "plugin"], plugin.failure)
      continue
    }
    const config = plugin.success.decode(rest)
    if (Result.isFailure(config)) {
      reportIssues(["channels", name], config.failure, knownKeys(plugin.success.plugin.config as Schema.Top), rest)
      continue
    }
    const plugin_ = plugin.success.plugin
    const decodedConfig = config.success
    channels.push({
      name,
      plugin: plugin_,
      pluginName,
      config: decodedConfig,
      make: (context) => plugin_.make(decodedConfig as never, context),
    })
  }
  const channelNames = channelEntries.map(([name]) => name)
  if (channelEntries.length === 0 && Result.isSuccess(decoded))
    report(["channels"], "channels: define at least one channel")
  else if (channelEntries.length > 0 && leftOut.size === channelEntries.length)
    report(
      ["channels"],
      `channels: every channel is optional and left out; set the variables of at least one (${[...leftOut]
        .map(([name, variables]) => `${name}: ${variables.join(", ")}`)
        .join("; ")})`,
    )

  // stages
  const stages: Array<StageDeclaration> = []
  const stageKeys = definitions.map((definition) => definition.key)
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
    const definition = definitions.find((candidate) => candidate.key === key)
    if (definition === undefined) {
      report(
        ["stages", index, key],
        `unknown stage "${key}" (known: ${stageKeys.join(", ")})${suggestion(key, stageKeys)}`,
        "error",
        true,
      )
      return
    }
    if (stages.some((stage) => stage.terminal)) {
      report(
        ["stages", index, key],
        `stage "${key}" comes after "generate", which is innermost: move it above`,
        "error",
        true,
      )
      return
    }
    const value = (entry as Record<string, unknown>)[key] ?? {}
    const decodedStage = definition.decode(value)
    if (Result.isFailure(decodedStage)) {
      reportIssues(["stages", index, key], decodedStage.failure, knownKeys(definition.schema), value)
      return
    }
    for (const finding of decodedStage.success.check({ channelNames })) {
      report(
        ["stages", index, key, ...finding.path],
        `stages.${index}.${key}.${finding.path.join(".")}: ${finding.message}`,
        finding.severity,
      )
    }
    stages.push(decodedStage.success)
  })

  // retired and deprecated model ids anywhere a model is named
  const today = options.today ?? new Date().toISOString().slice(0, 10)
  visit(document, {
    Pair(_key, pair) {
      if (!isScalar(pair.value) || typeof pair.value.value !== "string") return
      const warning = statusWarning(pair.value.value, today)
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
    limits: {
      ...defaultLimits,
      ...(shape.limits?.maxPromptChars === undefined ? {} : { maxPromptChars: shape.limits.maxPromptChars }),
    },
    warnings,
    ...stateOf(shape.state, options.stores),
    ...(shape.network === undefined
      ? {}
      : {
          network: {
            allowHosts: shape.network.allowHosts,
            downloadTimeoutMillis: shape.network.downloadTimeout,
            maxRedirects: shape.network.maxRedirects,
          },
        }),
  }
  return pipeline
})
