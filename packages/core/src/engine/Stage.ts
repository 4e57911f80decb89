/**
 * The stage contract (engine v2). A pipeline lists stages, outermost first. Each stage definition has a
 * YAML key, a Schema for its block (the one spec behind validation, the JSON Schema and docs), optional
 * cross-checks, and a `make` that is an Effect: it may use a Scope (files, fibers), services, and the
 * pipeline's folder. What `make` builds is a {@link Stage}, which can take part at two moments:
 *
 * - **planning** (`plan`): pure routing on a {@link Draft} — size, model, candidates — with no call made,
 *   so `peel run --dry-run` and `peel estimate` can reuse it;
 * - **running** (`around`): request-level middleware wrapping everything after it (cache, budget,
 *   fallback). The innermost, terminal stage (`generate`) provides the {@link Handler} that tries the
 *   plan's candidates, each call wrapped by attempt-level policies (timeout, retry, ...).
 *
 * @since 0.2.0
 */

import type { AspectRatio, Size } from "@peel/contract/Catalog"
import type { Channel, ChannelImage } from "@peel/contract/Channel"
import type { ConfigError, PipelineError } from "@peel/contract/Errors"
import type { ImageInfo } from "@peel/contract/Image"
import { flattenIssues, type PathIssue } from "@peel/contract/Issues"
import { Effect, Result, Schema, type Scope } from "effect"
import type { Draft, Plan } from "../plan/Plan.ts"
import type * as State from "../state/State.ts"
import type { Journal } from "./AttemptJournal.ts"

/** An image a request produced, before the runner writes it and turns it into a result. @category model */
export interface Generated {
  readonly channel: string
  readonly model: string
  readonly size: Size
  readonly aspectRatio: AspectRatio
  readonly image: ChannelImage
  readonly info: ImageInfo
  readonly cached: boolean
  readonly placeholder: boolean
}

/** Runs a plan to an image. The journal of the request is in context. @category model */
export type Handler = (plan: Plan) => Effect.Effect<Generated, PipelineError, Journal>

/** Request-level middleware: wraps everything after it. @category model */
export type Middleware = (next: Handler) => Handler

/** What a stage may know when it is built. @category model */
export interface StageContext {
  /** The pipeline's channels, by name, in declaration order. */
  readonly channels: ReadonlyMap<string, Channel>
  /** The pipeline file, and its folder (for relative paths: cache folders, placeholder images). */
  readonly pipelineFile: string
  readonly pipelineDir: string
  /** ISO date used to map retired model ids to their successors. */
  readonly today: string
}

/** What a stage contributes. Every part is optional. @category model */
export interface Stage {
  /** Routing during planning: pure, calls nobody. */
  readonly plan?: (draft: Draft) => Draft
  /** Request-level middleware while running. */
  readonly around?: Middleware
  /** The terminal stage's handler (only `generate`). */
  readonly handler?: Handler
}

/** A cross-check finding. @category model */
export interface Finding {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
  readonly severity: "error" | "warning"
}

/** What cross-checks may look at. @category model */
export interface PipelineFacts {
  readonly channelNames: ReadonlyArray<string>
}

/** A stage definition, typed by its configuration. @category model */
export interface StageDefinition<Config> {
  readonly key: string
  readonly description: string
  readonly schema: Schema.Decoder<Config>
  readonly check?: (config: Config, pipeline: PipelineFacts) => ReadonlyArray<Finding>
  readonly make: (
    config: Config,
    context: StageContext,
  ) => Effect.Effect<Stage, ConfigError, Scope.Scope | State.Services>
  /** Only the innermost stage may be terminal. */
  readonly terminal?: boolean
}

/** A stage block decoded against its definition, ready to check and build. @category model */
export interface DecodedStage {
  readonly key: string
  readonly terminal: boolean
  readonly config: unknown
  readonly check: (pipeline: PipelineFacts) => ReadonlyArray<Finding>
  readonly make: (context: StageContext) => Effect.Effect<Stage, ConfigError, Scope.Scope | State.Services>
}

/** A registered stage: its definition with the configuration type erased behind `decode`. @category model */
export interface RegisteredStage {
  readonly key: string
  readonly description: string
  readonly schema: Schema.Top
  readonly terminal: boolean
  readonly decode: (block: unknown) => Result.Result<DecodedStage, ReadonlyArray<PathIssue>>
}

const strict = { errors: "all", onExcessProperty: "error" } as const

/** Register a stage definition (erases its configuration type without `any`). @category constructors */
export const register = <Config>(definition: StageDefinition<Config>): RegisteredStage => ({
  key: definition.key,
  description: definition.description,
  schema: definition.schema as unknown as Schema.Top,
  terminal: definition.terminal === true,
  decode: (block) => {
    const decoded = Schema.decodeUnknownResult(definition.schema as Schema.Decoder<Config, never>)(block, strict)
    if (Result.isFailure(decoded)) return Result.fail(flattenIssues(decoded.failure))
    const config = decoded.success
    return Result.succeed({
      key: definition.key,
      terminal: definition.terminal === true,
      config,
      check: (pipeline) => definition.check?.(config, pipeline) ?? [],
      make: (context) => definition.make(config, context),
    })
  },
})

/** Compose middleware so the first wraps all the rest. @category constructors */
export const compose = (middleware: ReadonlyArray<Middleware>, innermost: Handler): Handler =>
  middleware.reduceRight<Handler>((next, stage) => stage(next), innermost)

/** A stage that only routes. @category constructors */
export const planning = (plan: (draft: Draft) => Draft): Effect.Effect<Stage> => Effect.succeed({ plan })
