/**
 * A key shorter than `Errors.minSecretLength` characters looks like a placeholder: the channel warns about
 * it when it is built (`context.warn`), and stays quiet about a real-looking key.
 */
import { Errors, Plugin } from "@peel/core"
import { Effect, Result } from "effect"
import { expect, it } from "vitest"
import plugin from "../src/index.ts"

const blocks = (key: string) => [{ apiKey: key, preset: "laozhang" }]

const warningsFor = async (block: unknown): Promise<ReadonlyArray<string>> => {
  const decoded = Plugin.decodeConfig(plugin, block)
  if (Result.isFailure(decoded)) throw new Error("the block does not decode")
  const warnings: Array<string> = []
  await Effect.runPromise(
    Effect.scoped(
      plugin.make(decoded.success, {
        name: "c",
        file: "/tmp/pipeline.yaml",
        warn: (message) => warnings.push(message),
      }),
    ),
  )
  return warnings
}

it(`warns that a secret under ${Errors.minSecretLength} characters looks like a placeholder`, async () => {
  for (const block of blocks("x")) expect((await warningsFor(block)).join("\n")).toMatch(/looks like a placeholder/)
  for (const block of blocks("sk-a-real-looking-key-0123456789"))
    expect((await warningsFor(block)).join("\n")).not.toMatch(/placeholder/)
})
