/**
 * The transport for Vertex AI: `@google/genai` with `vertexai: true`. Project mode (project + location,
 * default `global`) authenticates with Application Default Credentials, an explicit service-account
 * file, or a token source (a Bearer access token); express mode uses an API key in `x-goog-api-key`.
 * SDK retries stay off and every call is abortable.
 *
 * @since 0.1.0
 */
import { GoogleGenAI } from "@google/genai"
import { GeminiWire, Transport } from "@peel/gemini-wire"
import { Redacted } from "effect"
import { classify } from "./internal/errors.ts"

/** How the client authenticates. @category models */
export type Auth =
  | { readonly _tag: "Express"; readonly apiKey: Redacted.Redacted<string> }
  | { readonly _tag: "Adc"; readonly project: string; readonly location: string }
  | { readonly _tag: "ServiceAccount"; readonly project: string; readonly location: string; readonly keyFile: string }
  | {
      readonly _tag: "Token"
      readonly project: string
      readonly location: string
      readonly accessToken: Redacted.Redacted<string>
    }

/** @category models */
export interface ClientOptions {
  readonly channel: string
  readonly auth: Auth
  readonly baseUrl?: string
  readonly apiVersion?: string
  readonly timeoutMillis?: number
}

/** @category models */
export type Client = GeminiWire.Client

const secretsOf = (auth: Auth): ReadonlyArray<string> =>
  auth._tag === "Express"
    ? [Redacted.value(auth.apiKey)]
    : auth._tag === "Token"
      ? [Redacted.value(auth.accessToken)]
      : []

/**
 * Construct without the SDK's `console.debug` notes (e.g. "project/location will take precedence over
 * the API key from the environment variables" whenever GEMINI_API_KEY is set): they go to stdout, which
 * belongs to the program embedding Peel (and to `peel run --json`).
 */
const quietly = <A>(construct: () => A): A => {
  const debug = console.debug
  console.debug = () => {}
  try {
    return construct()
  } finally {
    console.debug = debug
  }
}

/** @category constructors */
export const make = (options: ClientOptions): Client => {
  const auth = options.auth
  const transport = Transport.make()
  const httpOptions = {
    fetch: transport.fetch,
    ...(options.baseUrl === undefined ? {} : { baseUrl: options.baseUrl.replace(/\/+$/, "") }),
    ...(options.apiVersion === undefined ? {} : { apiVersion: options.apiVersion }),
    ...(options.timeoutMillis === undefined ? {} : { timeout: options.timeoutMillis }),
  }
  const sdk = quietly(() =>
    auth._tag === "Express"
      ? new GoogleGenAI({ vertexai: true, apiKey: Redacted.value(auth.apiKey), httpOptions })
      : new GoogleGenAI({
          vertexai: true,
          project: auth.project,
          location: auth.location,
          httpOptions,
          ...(auth._tag === "ServiceAccount"
            ? {
                googleAuthOptions: {
                  keyFile: auth.keyFile,
                  scopes: ["https://www.googleapis.com/auth/cloud-platform"],
                },
              }
            : auth._tag === "Token"
              ? {
                  googleAuthOptions: {
                    // A token source: the caller refreshes the token (e.g. `gcloud auth print-access-token`).
                    authClient: {
                      getRequestHeaders: async () =>
                        new Headers({ Authorization: `Bearer ${Redacted.value(auth.accessToken)}` }),
                    } as never,
                  },
                }
              : {}),
        }),
  )
  const secrets = secretsOf(auth)
  return GeminiWire.makeClient(sdk, (thrown) => classify(options.channel, thrown, secrets), transport)
}
