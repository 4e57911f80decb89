/**
 * Downloading a reference image named by URL, bounded: http(s) only, at most `maxBytes` read (the body is
 * cut off past it, never buffered whole), one time limit over every hop and the body, at most
 * `maxRedirects` redirects — each followed by hand so every hop is checked — and no loopback, private,
 * link-local, unspecified, multicast or reserved target unless the pipeline's `network.allowHosts` lists
 * it. The check is made on the *resolved* addresses before each hop, and again when the socket connects
 * (a name that resolves differently the second time is still refused).
 *
 * Messages name a URL by scheme, host and path only: a query string may hold a token.
 *
 * @since 0.4.0
 */
import { type LookupAddress, lookup as lookupCallback } from "node:dns"
import { lookup } from "node:dns/promises"
import { isIP } from "node:net"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { type AllowList, addressKind, allowList } from "@peel/contract/Network"
import { Effect, Stream } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"

/** What a pipeline says about the network (`network:`). @category model */
export interface NetworkOptions {
  /** Hosts allowed although not public: names, addresses or ranges (`images.internal`, `127.0.0.1`, `10.0.0.0/8`). */
  readonly allowHosts?: ReadonlyArray<string> | undefined
  /** Time limit for one download, every redirect and the body included (ms). */
  readonly downloadTimeoutMillis?: number | undefined
  /** Most redirects followed for one download. */
  readonly maxRedirects?: number | undefined
}

/** Defaults. @category defaults */
export const defaults = { downloadTimeoutMillis: 30_000, maxRedirects: 5 } as const

/** Scheme, host and path of a URL: no user name, password, query or fragment. @category messages */
export const describeUrl = (url: string | URL): string => {
  const parsed = typeof url === "string" ? parseUrl(url) : url
  return parsed === undefined
    ? "a URL that does not parse"
    : `${parsed.protocol}//${parsed.host}${parsed.pathname}${parsed.search === "" ? "" : "?…"}`
}

const parseUrl = (text: string, base?: URL): URL | undefined =>
  URL.canParse(text, base) ? new URL(text, base) : undefined

const bare = (host: string) => host.replace(/^\[|\]$/g, "").toLowerCase()

const seconds = (millis: number) => (millis % 1000 === 0 ? `${millis / 1000} s` : `${millis} ms`)

const refusal = (host: string, address: string, kind: string) =>
  `refused: ${host === address ? address : `${host} resolves to ${address}`}, a ${kind} address; list the host under network.allowHosts in the pipeline to allow it`

/** The first resolved address that is not public and not allowed, with its kind. */
const firstRefused = (
  allow: AllowList,
  addresses: ReadonlyArray<string>,
): { readonly address: string; readonly kind: string } | undefined => {
  for (const address of addresses) {
    const kind = addressKind(address)
    if (kind !== undefined && !allow.allowsAddress(address)) return { address, kind }
  }
  return undefined
}

/** Resolve a URL's host and refuse it when an address it resolves to is not allowed. */
const checkHost = (url: URL, allow: AllowList): Effect.Effect<void, string> => {
  const host = bare(url.hostname)
  if (allow.allowsName(host)) return Effect.void
  const resolved: Effect.Effect<ReadonlyArray<string>, string> = isIP(host) !== 0
    ? Effect.succeed([host])
    : Effect.tryPromise({
        try: () => lookup(host, { all: true, verbatim: true }),
        catch: () => `cannot resolve ${host}`,
      }).pipe(Effect.map((entries) => entries.map((entry) => entry.address)))
  return Effect.flatMap(resolved, (addresses) => {
    const refused = firstRefused(allow, addresses)
    return refused === undefined ? Effect.void : Effect.fail(refusal(host, refused.address, refused.kind))
  })
}

const refusedCode = "PEEL_REFUSED_ADDRESS"

/**
 * `lookup` for the sockets: the same rule at connect time, so a name cannot resolve to a public address
 * for the check and a private one for the connection.
 */
export const guardedLookup =
  (allow: AllowList) =>
  (
    hostname: string,
    options: { readonly all?: boolean | undefined; readonly family?: number | string | undefined },
    callback: (...args: Array<unknown>) => void,
  ): void => {
    lookupCallback(hostname, { ...options, all: true } as never, (error, found: unknown) => {
      if (error !== null) return callback(error)
      const addresses = found as ReadonlyArray<LookupAddress>
      const refused = allow.allowsName(hostname)
        ? undefined
        : firstRefused(
            allow,
            addresses.map((entry) => entry.address),
          )
      if (refused !== undefined)
        return callback(
          Object.assign(new Error(refusal(bare(hostname), refused.address, refused.kind)), { code: refusedCode }),
        )
      if (options.all === true) return callback(null, addresses)
      const first = addresses[0]
      return first === undefined
        ? callback(Object.assign(new Error(`cannot resolve ${hostname}`), { code: "ENOTFOUND" }))
        : callback(null, first.address, first.family)
    })
  }

/** Why a request failed, from the transport's cause: no URL in it (the client's own message has one). */
const transportProblem = (error: unknown): string => {
  let cause: unknown = error
  for (let depth = 0; depth < 5 && cause !== undefined && cause !== null; depth++) {
    const code = (cause as { code?: unknown }).code
    if (code === refusedCode) return String((cause as Error).message)
    if (typeof code === "string" && code.startsWith("E"))
      return `cannot download: ${code === "ECONNREFUSED" ? "connection refused" : code}`
    cause = (cause as { cause?: unknown }).cause ?? (cause as { reason?: { cause?: unknown } }).reason?.cause
  }
  return "cannot download: the connection failed"
}

const redirectStatuses = new Set([301, 302, 303, 307, 308])

/**
 * Download `url` into bytes, or say why not (a message to put after the image's name). Builds its own
 * client (node:http with a guarded `lookup`), torn down when the download ends.
 *
 * @category download
 */
export const download = (
  url: string,
  options: { readonly maxBytes: number; readonly network?: NetworkOptions | undefined },
): Effect.Effect<Uint8Array, string> => {
  const allow = allowList(options.network?.allowHosts)
  const timeoutMillis = options.network?.downloadTimeoutMillis ?? defaults.downloadTimeoutMillis
  const maxRedirects = options.network?.maxRedirects ?? defaults.maxRedirects
  const megabytes = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`
  const tooBig = `is over ${megabytes(options.maxBytes)}; at most ${megabytes(options.maxBytes)} each`

  const fetchBytes = Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const first = parseUrl(url)
    if (first === undefined) return yield* Effect.fail("is not a valid URL")
    let current = first
    for (let hop = 0; ; hop++) {
      if (current.protocol !== "http:" && current.protocol !== "https:")
        return yield* Effect.fail(
          hop === 0
            ? `cannot download a ${current.protocol} URL; use http or https`
            : `redirected to a ${current.protocol} URL (${describeUrl(current)}); only http and https are followed`,
        )
      yield* checkHost(current, allow).pipe(
        Effect.mapError((problem) => (hop === 0 ? problem : `redirected to ${describeUrl(current)}: ${problem}`)),
      )
      const response = yield* client
        .execute(HttpClientRequest.get(current, { headers: { accept: "image/png, image/jpeg, image/webp" } }))
        .pipe(Effect.mapError(transportProblem))
      if (redirectStatuses.has(response.status)) {
        const location = response.headers.location
        if (location === undefined)
          return yield* Effect.fail(`cannot download: answered HTTP ${response.status} without a Location`)
        if (hop >= maxRedirects)
          return yield* Effect.fail(`cannot download: redirected more than ${maxRedirects} times`)
        const next = parseUrl(location, current)
        if (next === undefined)
          return yield* Effect.fail(`answered HTTP ${response.status} with a Location that is not a URL`)
        current = next
        continue
      }
      if (response.status < 200 || response.status > 299)
        return yield* Effect.fail(
          hop === 0
            ? `cannot download: answered HTTP ${response.status}`
            : `cannot download: answered HTTP ${response.status} (after a redirect to ${describeUrl(current)})`,
        )
      const declared = Number(response.headers["content-length"] ?? "0")
      if (declared > options.maxBytes)
        return yield* Effect.fail(`is ${megabytes(declared)}; at most ${megabytes(options.maxBytes)} each`)
      const chunks: Array<Uint8Array> = []
      const total = yield* response.stream.pipe(
        Stream.mapError(transportProblem),
        Stream.runFoldEffect(
          () => 0,
          (sum, chunk: Uint8Array) => {
            const next = sum + chunk.length
            if (next > options.maxBytes) return Effect.fail(tooBig)
            chunks.push(chunk)
            return Effect.succeed(next)
          },
        ),
      )
      const bytes = new Uint8Array(total)
      let offset = 0
      for (const chunk of chunks) {
        bytes.set(chunk, offset)
        offset += chunk.length
      }
      return bytes
    }
  })

  return fetchBytes.pipe(
    Effect.timeoutOrElse({
      duration: timeoutMillis,
      orElse: () => Effect.fail(`cannot download: timed out after ${seconds(timeoutMillis)}`),
    }),
    Effect.provide(NodeHttpClient.layerNodeHttpOptions({ lookup: guardedLookup(allow) as never, keepAlive: false })),
  )
}
