/**
 * `Errors.redact`, the one function upstream text goes through before it reaches a message: secrets removed
 * (never corrupting words when a "secret" is too short to be told apart from them), base64 elided, cut short.
 */
import { describe, expect, it } from "vitest"
import { Errors } from "../src/index.ts"

const key = "AIzaSyD-REAL-looking-key_0123456789"

describe("Errors.redact", () => {
  it("removes every occurrence of a secret, also URL-encoded", () => {
    const special = "sk/or+v1=abc def"
    const text = `API key not valid: ${key}. Sent ?key=${key} and Bearer ${special} (${encodeURIComponent(special)})`
    const redacted = Errors.redact(text, [key, special])
    expect(redacted).not.toContain(key)
    expect(redacted).not.toContain(special)
    expect(redacted).not.toContain(encodeURIComponent(special))
    expect(redacted).toContain("API key not valid: <redacted>")
  })

  it(`does not substitute a secret shorter than ${Errors.minSecretLength} characters inside words`, () => {
    expect(Errors.redact("Resource exhausted", ["x"])).toBe("Resource exhausted")
    expect(Errors.redact("the test failed: contest over", ["test"])).toBe("the <redacted> failed: contest over")
    expect(Errors.redact("invalid key=x&alt=json", ["x"])).toBe("invalid key=<redacted>&alt=json")
    expect(Errors.redact("x-goog-api-key missing", ["x"])).toBe("x-goog-api-key missing")
  })

  it("removes a long secret even inside a base64-looking run, then elides the run", () => {
    const run = `${"A".repeat(150)}${key.replace(/[-_]/g, "Q")}${"B".repeat(150)}`
    const secret = key.replace(/[-_]/g, "Q")
    const redacted = Errors.redact(run, [secret], 1000)
    expect(redacted).not.toContain(secret)
    expect(redacted).toContain("<redacted>")
    expect(Errors.redact("A".repeat(500))).toBe("<500 base64 chars>")
  })

  it("collapses whitespace and cuts to the limit after redacting", () => {
    const text = `error:\n\n   ${key}   ${"word ".repeat(100)}`
    const redacted = Errors.redact(text, [key], 40)
    expect(redacted.startsWith("error: <redacted> word")).toBe(true)
    expect(redacted.length).toBe(41)
    expect(redacted.endsWith("…")).toBe(true)
  })

  it("describeBody is redact", () => {
    expect(Errors.describeBody(`bad ${key} Resource exhausted`, [key, "x"])).toBe(
      Errors.redact(`bad ${key} Resource exhausted`, [key, "x"]),
    )
    expect(Errors.describeBody("Resource exhausted", ["x"])).toBe("Resource exhausted")
  })

  it("isPlaceholderSecret flags keys too short to be real", () => {
    expect(Errors.isPlaceholderSecret("x")).toBe(true)
    expect(Errors.isPlaceholderSecret("changeme")).toBe(false)
    expect(Errors.isPlaceholderSecret("  abc  ")).toBe(true)
    expect(Errors.isPlaceholderSecret(key)).toBe(false)
  })
})
