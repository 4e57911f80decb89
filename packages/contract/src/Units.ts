/**
 * Units as pipelines, workloads and flags write them, parsed in one place: durations (`500ms`, `90s`, `5m`,
 * `1h`, `1d`) into Effect `Duration`s or milliseconds, byte sizes (`512MB`, `2GB`, `100KiB`) through
 * Effect's `ByteSize`, and shares (`0.4` or `40%`). Each kind has a parse function (`undefined` for text
 * that is not one) and a Schema for YAML whose error names the kind and shows examples.
 *
 * @since 0.4.0
 */
import { ByteSize, Duration, Option, Schema, SchemaGetter } from "effect"

// ---------------------------------------------------------------------------------------------------
// durations

const durationUnits: Record<string, (amount: number) => Duration.Duration> = {
  ms: Duration.millis,
  s: Duration.seconds,
  m: Duration.minutes,
  h: Duration.hours,
  d: Duration.days,
}
const durationPattern = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/

/** `90s` → a `Duration` of 90 seconds; `undefined` when the text is not a duration. @category durations */
export const parseDuration = (text: string): Duration.Duration | undefined => {
  const match = durationPattern.exec(text.trim())
  return match === null ? undefined : durationUnits[match[2]!]!(Number(match[1]))
}

/** `90s` → 90000; `undefined` when the text is not a duration. @category durations */
export const parseMillis = (text: string): number | undefined => {
  const duration = parseDuration(text)
  return duration === undefined ? undefined : Duration.toMillis(duration)
}

/** What a bad duration is told. @category durations */
export const durationProblem = (text: string): string =>
  `expected a duration such as 500ms, 90s, 5m or 1h, got "${text}"`

/** What a bad window is told. @category durations */
export const windowProblem = (text: string): string => `expected a window such as 1d, 12h or 30m, got "${text}"`

const durationString = (problem: (text: string) => string, positive: boolean) =>
  Schema.String.pipe(
    Schema.check(
      Schema.makeFilter(
        (text: string) => {
          const millis = parseMillis(text)
          return (millis !== undefined && (!positive || millis > 0)) || problem(text)
        },
        { title: "duration" },
      ),
    ),
  )

/** A duration string (`500ms`, `90s`, `5m`, `1h`, `1d`) decoded to milliseconds. @category schemas */
export const DurationMillis = durationString(durationProblem, false)
  .pipe(
    Schema.decodeTo(Schema.Number, {
      decode: SchemaGetter.transform((text: string) => parseMillis(text)!),
      encode: SchemaGetter.transform((millis: number) => `${millis}ms`),
    }),
  )
  .annotate({ description: "A duration: 500ms, 90s, 5m or 1h" })

/** A duration string decoded to an Effect `Duration`. @category schemas */
export const DurationFromString = durationString(durationProblem, false)
  .pipe(
    Schema.decodeTo(Schema.Duration, {
      decode: SchemaGetter.transform((text: string) => parseDuration(text)!),
      encode: SchemaGetter.transform((duration: Duration.Duration) => `${Duration.toMillis(duration)}ms`),
    }),
  )
  .annotate({ description: "A duration: 500ms, 90s, 5m or 1h" })

/**
 * A window length (`1d`, `12h`, `30m`): a duration above zero, kept as written (read it with
 * {@link parseMillis}).
 *
 * @category schemas
 */
export const Window = durationString(windowProblem, true).annotate({
  description: "A window length: 1d (a UTC day), 12h, 30m",
})

// ---------------------------------------------------------------------------------------------------
// byte sizes

/**
 * `512MB`, `2GB`, `100KiB`, `1.5 MiB` → bytes, through Effect's `ByteSize` (decimal units are powers of
 * 1000, binary ones of 1024; `KB` is read as `kB`). `undefined` when the text is not a size or is not a
 * whole number of bytes.
 *
 * @category sizes
 */
export const parseBytes = (text: string): number | undefined =>
  Option.getOrUndefined(
    Option.flatMap(ByteSize.fromString(text.trim().replace(/(\d|\s)KB$/, "$1kB")), ByteSize.toNumber),
  )

/** What a bad size is told. @category sizes */
export const bytesProblem = (text: string): string => `expected a size such as 512MB, 2GB or 100KiB, got "${text}"`

/** A size: a positive whole number of bytes, or text with a unit (`512MB`, `2GB`, `100KiB`). @category schemas */
export const ByteSizeInput = Schema.Union([
  Schema.Int.check(Schema.isGreaterThan(0)),
  Schema.String.pipe(
    Schema.check(
      Schema.makeFilter((text: string) => (parseBytes(text) ?? 0) > 0 || bytesProblem(text), { title: "size" }),
    ),
  ),
]).annotate({ description: "A size in bytes, or with a unit: 512MB, 2GB, 100KiB" })

/** A size as {@link ByteSizeInput} takes it → bytes (`fallback` when unset). @category sizes */
export const bytesOf = (size: number | string | undefined, fallback: number): number =>
  size === undefined ? fallback : typeof size === "number" ? size : (parseBytes(size) ?? fallback)

// ---------------------------------------------------------------------------------------------------
// shares

const sharePattern = /^(\d+(?:\.\d+)?)\s*%$/

/** `0.4` or `"40%"` → 0.4; `undefined` when it is neither or is outside 0–1. @category shares */
export const parseShare = (value: number | string): number | undefined => {
  if (typeof value === "number") return value >= 0 && value <= 1 ? value : undefined
  const match = sharePattern.exec(value.trim())
  if (match === null) return undefined
  const share = Number(match[1]) / 100
  return share <= 1 ? share : undefined
}

/** What a bad share is told. @category shares */
export const shareProblem = "expected a share: a fraction from 0 to 1 (0.4) or a percentage (40%)"

/** A share: a fraction from 0 to 1 (`0.4`) or a percentage (`"40%"`), kept as written. @category schemas */
export const Share = Schema.Union([Schema.Number, Schema.String])
  .check(Schema.makeFilter((value: number | string) => parseShare(value) !== undefined || shareProblem))
  .annotate({ description: "A share: a fraction from 0 to 1 (0.4) or a percentage (40%)" })
