/** One units parser: durations, windows, byte sizes and shares, each with its Schema and its message. */
import { Duration, Result, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { Duration as DeprecatedDuration, Units } from "../src/index.ts"

/** The one message a Schema gives for `input`, or the decoded value. */
const decode = (schema: Schema.Top, input: unknown): unknown => {
  const result = Schema.decodeUnknownResult(schema as Schema.Codec<unknown, unknown>)(input)
  return Result.isSuccess(result) ? result.success : String(result.failure)
}

describe("Units: durations", () => {
  it("parses ms, s, m, h and d into Effect Durations and milliseconds", () => {
    expect(["500ms", "90s", "1.5s", "5m", "1h", "1d", " 2 s "].map(Units.parseMillis)).toEqual([
      500, 90_000, 1500, 300_000, 3_600_000, 86_400_000, 2000,
    ])
    expect(Duration.toSeconds(Units.parseDuration("90s")!)).toBe(90)
    expect(["", "90", "5 minutes", "-1s", "1w", "s", "1.s"].map(Units.parseMillis)).toEqual(
      Array.from({ length: 7 }, () => undefined),
    )
  })

  it("decodes YAML durations and names a bad one with examples", () => {
    expect(decode(Units.DurationMillis, "90s")).toBe(90_000)
    expect(decode(Units.DurationMillis, "soon")).toContain(
      'expected a duration such as 500ms, 90s, 5m or 1h, got "soon"',
    )
    expect(Duration.toMillis(decode(Units.DurationFromString, "2m") as Duration.Duration)).toBe(120_000)
    expect(decode(Units.DurationFromString, "2 weeks")).toContain('got "2 weeks"')
  })

  it("takes a window above zero and says what a window looks like", () => {
    expect(decode(Units.Window, "1d")).toBe("1d")
    expect(decode(Units.Window, "0m")).toContain('expected a window such as 1d, 12h or 30m, got "0m"')
    expect(decode(Units.Window, "daily")).toContain('expected a window such as 1d, 12h or 30m, got "daily"')
  })

  it("keeps the old Duration module as an alias", () => {
    expect(DeprecatedDuration.parseMillis("5m")).toBe(300_000)
    expect(DeprecatedDuration.DurationMillis).toBe(Units.DurationMillis)
  })
})

describe("Units: byte sizes", () => {
  it("parses decimal and binary units through Effect's ByteSize; KB is kB", () => {
    expect(["512MB", "2GB", "100KiB", "1.5 MiB", "10KB", "10kB", "7B", "3 bytes"].map(Units.parseBytes)).toEqual([
      512e6, 2e9, 102_400, 1_572_864, 10_000, 10_000, 7, 3,
    ])
    expect(["", "512", "2 gigs", "-1MB", "0.1KiB", "1e3B", "5mb"].map(Units.parseBytes)).toEqual(
      Array.from({ length: 7 }, () => undefined),
    )
  })

  it("decodes a size or a positive whole number, and names a bad one", () => {
    expect(decode(Units.ByteSizeInput, "512MB")).toBe("512MB")
    expect(decode(Units.ByteSizeInput, 4096)).toBe(4096)
    expect(decode(Units.ByteSizeInput, "lots")).toContain('expected a size such as 512MB, 2GB or 100KiB, got "lots"')
    expect(decode(Units.ByteSizeInput, "0B")).toContain('got "0B"')
    expect(Units.bytesOf("1KiB", 5)).toBe(1024)
    expect(Units.bytesOf(undefined, 5)).toBe(5)
    expect(Units.bytesOf(77, 5)).toBe(77)
  })
})

describe("Units: shares", () => {
  it("parses a fraction from 0 to 1 or a percentage", () => {
    expect([0, 0.4, 1, "40%", "12.5 %", "100%"].map(Units.parseShare)).toEqual([0, 0.4, 1, 0.4, 0.125, 1])
    expect([1.5, -0.1, "150%", "40", "forty%"].map(Units.parseShare)).toEqual(
      Array.from({ length: 5 }, () => undefined),
    )
  })

  it("decodes a share and names a bad one", () => {
    expect(decode(Units.Share, "20%")).toBe("20%")
    expect(decode(Units.Share, "120%")).toContain(
      "expected a share: a fraction from 0 to 1 (0.4) or a percentage (40%)",
    )
  })
})
