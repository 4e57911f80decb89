/**
 * Durations as pipelines write them: `500ms`, `90s`, `5m`, `1h` (or a bare number of milliseconds).
 *
 * @since 0.1.0
 */
import { Schema, SchemaGetter } from "effect"

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const pattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/

/** Parse `90s` to 90000; `undefined` when it is not a duration. @category parsing */
export const parseMillis = (text: string): number | undefined => {
  const match = pattern.exec(text.trim())
  return match === null ? undefined : Number(match[1]) * units[match[2]!]!
}

/** A duration string (`500ms`, `90s`, `5m`, `1h`) decoded to milliseconds. @category schemas */
export const DurationMillis = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter(
      (text: string) =>
        parseMillis(text) !== undefined || `expected a duration such as 500ms, 90s, 5m or 1h, got "${text}"`,
      {
        title: "duration",
      },
    ),
  ),
  Schema.decodeTo(Schema.Number, {
    decode: SchemaGetter.transform((text: string) => parseMillis(text)!),
    encode: SchemaGetter.transform((millis: number) => `${millis}ms`),
  }),
).annotate({ description: "A duration: 500ms, 90s, 5m or 1h" })
