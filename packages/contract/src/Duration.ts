/**
 * Durations as pipelines write them: `500ms`, `90s`, `5m`, `1h`, `1d`.
 *
 * @deprecated moved to `Units` (one parser for durations, windows, byte sizes and shares); these aliases
 * stay for one release.
 * @since 0.1.0
 */

export {
  /** @deprecated use `Units.DurationMillis`. @category schemas */
  DurationMillis,
  /** @deprecated use `Units.parseMillis`. @category parsing */
  parseMillis,
} from "./Units.ts"
