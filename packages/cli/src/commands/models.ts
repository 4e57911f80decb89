/**
 * `peel models [PIPELINE] [--json]`: the catalog as a table — Google's ids, aliases, status (active,
 * deprecated, retired → successor), sizes, aspect ratios, expected price per image at each size (standard
 * tier, from the catalog's token prices, with the date they were verified) and, given a pipeline, the
 * channels that serve each model. Nothing is called; a pipeline's channels are built (offline, without
 * secrets) only to read their capabilities.
 *
 * @since 0.3.0
 */
import { Catalog, type Channel, Pipeline, Pricing } from "@peel/core"
import { Effect, Result } from "effect"
import { ExitCode, printProblems } from "../output.ts"
import { loadOptions } from "../plugins.ts"

export interface ModelsOptions {
  /** A pipeline whose channels to list per model. */
  readonly file?: string
  readonly json: boolean
}

/** One model as `peel models` shows it. */
export interface ModelRow {
  readonly id: string
  readonly family: string
  readonly aliases: ReadonlyArray<string>
  readonly status: string
  readonly shutdown?: string
  readonly successor?: string
  readonly sizes: ReadonlyArray<Catalog.Size>
  readonly aspectRatios: ReadonlyArray<Catalog.AspectRatio>
  /** Expected USD per image at each size the model makes (standard tier, prompt excluded). */
  readonly priceUsd: Readonly<Partial<Record<Catalog.Size, number>>>
  /** USD per reference image (input image tokens at the text-input price). */
  readonly referenceImageUsd: number
  readonly pricesVerified: string
  /** Channels of the pipeline that serve the model (only with a pipeline). */
  readonly channels?: ReadonlyArray<string>
}

/** Every catalog model as a row; `channels` lists the pipeline's channels serving each. */
export const rows = (channels?: ReadonlyArray<Channel.Channel>): ReadonlyArray<ModelRow> =>
  Object.values(Catalog.models).map((model) => {
    const aliases = Object.entries(Catalog.aliases)
      .filter(([, target]) => target === model.id)
      .map(([alias]) => alias)
    return {
      id: model.id,
      family: model.family,
      aliases,
      status: model.status,
      ...(model.shutdown === undefined ? {} : { shutdown: model.shutdown }),
      ...(model.successor === undefined ? {} : { successor: model.successor }),
      sizes: model.sizes,
      aspectRatios: model.aspectRatios,
      priceUsd: Object.fromEntries(model.sizes.map((size) => [size, Pricing.expectedCost(model.id, size)])),
      referenceImageUsd: Math.round(model.prices.inputImageTokens * model.prices.textInputPerMillion) / 1e6,
      pricesVerified: model.prices.verified,
      ...(channels === undefined
        ? {}
        : {
            channels: channels
              .filter((channel) => channel.capabilities.models.includes(model.id))
              .map((channel) => channel.name),
          }),
    }
  })

const statusText = (row: ModelRow): string =>
  row.status === "retired"
    ? `retired ${row.shutdown ?? ""} → ${row.successor ?? "?"}`
    : row.status === "deprecated"
      ? `deprecated (shutdown from ${row.shutdown ?? "?"})${row.successor === undefined ? "" : ` → ${row.successor}`}`
      : "active"

const ratiosText = (ratios: ReadonlyArray<Catalog.AspectRatio>): string => {
  const extra = ratios.filter((ratio) => !Catalog.commonAspectRatios.includes(ratio))
  return extra.length === 0 ? "10 standard" : `10 standard + ${extra.join(" ")}`
}

/** The table, columns padded to their widest cell. */
export const table = (models: ReadonlyArray<ModelRow>): string => {
  const header = ["MODEL", "ALIASES", "STATUS", "SIZES", "ASPECT RATIOS", "USD PER IMAGE", "PER REF IMAGE"]
  const withChannels = models.some((row) => row.channels !== undefined)
  if (withChannels) header.push("CHANNELS")
  const body = models.map((row) => {
    const cells = [
      row.id,
      row.aliases.join(", ") || "-",
      statusText(row),
      row.sizes.join(" "),
      ratiosText(row.aspectRatios),
      row.sizes.map((size) => `${size} $${(row.priceUsd[size] ?? 0).toFixed(3)}`).join(", "),
      `$${row.referenceImageUsd.toFixed(5)}`,
    ]
    if (withChannels)
      cells.push(row.channels === undefined || row.channels.length === 0 ? "-" : row.channels.join(", "))
    return cells
  })
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => cells[column]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd()
  const verified = [...new Set(models.map((row) => row.pricesVerified))].sort().join(", ")
  return [
    line(header),
    ...body.map(line),
    "",
    `Prices: Google's standard tier (Batch API: half), output tokens per size at the catalog's token prices (verified ${verified}).`,
  ].join("\n")
}

/** Build the pipeline's channels (offline: no secrets needed, nothing called) to read their capabilities. */
const channelsOf = (file: string) =>
  Effect.gen(function* () {
    const loaded = yield* Effect.result(Pipeline.load(file, { ...loadOptions, offline: true }))
    if (Result.isFailure(loaded)) {
      printProblems(loaded.failure.problems)
      return undefined
    }
    const pipeline = loaded.success
    return yield* Effect.scoped(
      Effect.forEach(pipeline.channels, (declaration) =>
        declaration.make({ name: declaration.name, file: pipeline.file, warn: () => {} }),
      ),
    )
  })

export const models = Effect.fn("models")(function* (options: ModelsOptions) {
  let channels: ReadonlyArray<Channel.Channel> | undefined
  if (options.file !== undefined) {
    const built = yield* Effect.result(channelsOf(options.file))
    if (Result.isFailure(built)) {
      process.stderr.write(`${options.file}: ${built.failure.message}\n`)
      return ExitCode.usage
    }
    if (built.success === undefined) return ExitCode.usage
    channels = built.success
  }
  const list = rows(channels)
  if (options.json) for (const row of list) process.stdout.write(`${JSON.stringify(row)}\n`)
  else process.stdout.write(`${table(list)}\n`)
  return ExitCode.ok
})
