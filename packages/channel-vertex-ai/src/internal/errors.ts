/**
 * The one place this channel classifies failures: Google's wire errors through the shared Gemini
 * classifier, plus Vertex's own — credentials that cannot be loaded or refreshed (ADC missing, a bad
 * service-account file) are `Unauthorized`, not a malformed answer.
 */
import { Errors } from "@peel/contract"
import { GeminiWire } from "@peel/gemini-wire"

const credentialProblem =
  /default credentials|Could not load|invalid_grant|unauthorized_client|invalid_client|ENOENT.*json|private key/i

export const classify = (channel: string, thrown: unknown, secrets: ReadonlyArray<string>): Errors.ChannelError => {
  const message =
    typeof (thrown as { message?: unknown })?.message === "string"
      ? (thrown as { message: string }).message
      : String(thrown)
  if (typeof (thrown as { status?: unknown })?.status !== "number" && credentialProblem.test(message))
    return new Errors.Unauthorized({
      channel,
      message: `Vertex AI credentials: ${Errors.describeBody(message, secrets, 200)}`,
    })
  return GeminiWire.classifyThrown(channel, thrown, secrets)
}
