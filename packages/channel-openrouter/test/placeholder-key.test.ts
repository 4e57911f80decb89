/**
 * A key shorter than `Errors.minSecretLength` characters looks like a placeholder: the channel warns about
 * it when it is built (`context.warn`), and stays quiet about a real-looking key.
 */
import { Errors } from "@peel/core"
import { checkPlaceholderKeyWarning } from "@peel/testkit"
import { it } from "vitest"
import plugin from "../src/index.ts"

it(`warns that a secret under ${Errors.minSecretLength} characters looks like a placeholder`, () =>
  checkPlaceholderKeyWarning(plugin, (key) => [{ apiKey: key }]))
