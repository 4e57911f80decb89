/**
 * `pipelines/pipeline.schema.json`, generated from the same Schemas the loader decodes with: the
 * pipeline's top-level shape, every stage's Schema and every first-party channel plugin's config Schema.
 * Editors use it for completion (`# yaml-language-server: $schema=./pipeline.schema.json`); a test fails
 * when the checked-in file is stale. `node packages/cli/src/schema.ts --write` regenerates it.
 *
 * @since 0.1.0
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import googleAiStudio from "@peel/channel-google-ai-studio"
import googleBatch from "@peel/channel-google-batch"
import openAiCompatible from "@peel/channel-openai-compatible"
import openRouter from "@peel/channel-openrouter"
import vertexAi from "@peel/channel-vertex-ai"
import { type Channel, Pipeline, Stages } from "@peel/core"
import { Schema } from "effect"

/** First-party plugins, as `plugin: NAME` names them. */
export const firstPartyPlugins: ReadonlyArray<Channel.AnyChannelPlugin> = [
  googleAiStudio,
  vertexAi,
  openRouter,
  openAiCompatible,
  googleBatch,
]

type JsonObject = { [key: string]: unknown }

const toJson = (schema: Schema.Top): { schema: JsonObject; definitions: JsonObject } => {
  const document = Schema.toJsonSchemaDocument(schema, { onExcessProperty: "error" }) as unknown as {
    schema: JsonObject
    definitions?: JsonObject
  }
  return { schema: document.schema, definitions: document.definitions ?? {} }
}

/** Build the JSON Schema document (draft 2020-12). */
export const pipelineJsonSchema = (): JsonObject => {
  const definitions: JsonObject = {}
  const collect = (schema: Schema.Top): JsonObject => {
    const converted = toJson(schema)
    Object.assign(definitions, converted.definitions)
    return converted.schema
  }
  const top = collect(Pipeline.PipelineShape) as { properties: JsonObject; required?: Array<string> }

  const optionalProperty = {
    type: "boolean",
    description: "Leave this channel out (with one warning) when its required ${VAR}s are unset",
  }
  const channelVariants = firstPartyPlugins.map((plugin) => {
    const config = collect(plugin.config as Schema.Top) as { properties?: JsonObject; required?: Array<string> }
    return {
      title: plugin.name,
      description: plugin.description,
      type: "object",
      properties: {
        plugin: { const: plugin.name, description: plugin.description },
        optional: optionalProperty,
        ...(config.properties ?? {}),
      },
      required: ["plugin", ...(config.required ?? [])],
      additionalProperties: false,
    }
  })
  const thirdParty = {
    title: "third-party plugin",
    description: "A package name or a relative path (./my-plugin.ts); its own Schema checks the rest",
    type: "object",
    properties: {
      plugin: { type: "string", not: { enum: firstPartyPlugins.map((plugin) => plugin.name) } },
      optional: optionalProperty,
    },
    required: ["plugin"],
  }
  const stageVariants = Stages.definitions.map((definition) => ({
    title: definition.key,
    description: definition.description,
    type: "object",
    properties: { [definition.key]: collect(definition.schema) },
    required: [definition.key],
    additionalProperties: false,
  }))
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "Peel pipeline",
    description:
      "A Peel image-generation pipeline: channels (upstream APIs) and stages (routing, selection, generation)",
    ...top,
    properties: {
      ...top.properties,
      channels: {
        ...(top.properties.channels as JsonObject),
        additionalProperties: { anyOf: [...channelVariants, thirdParty] },
      },
      stages: { ...(top.properties.stages as JsonObject), items: { anyOf: stageVariants } },
    },
    ...(Object.keys(definitions).length === 0 ? {} : { $defs: definitions }),
  }
}

export const schemaPath = join(import.meta.dirname, "..", "..", "..", "pipelines", "pipeline.schema.json")

/** The file's expected text (stable key order, trailing newline). */
export const schemaText = (): string => `${JSON.stringify(pipelineJsonSchema(), null, 2)}\n`

if (process.argv.includes("--write")) {
  writeFileSync(schemaPath, schemaText())
  process.stdout.write(`wrote ${schemaPath}\n`)
}
