/**
 * The HTTP transport Gemini channels give `@google/genai` (its `httpOptions.fetch`): the SDK still builds
 * every request, sends it through this function and reads the answer with `response.json()`, but the
 * bytes travel over `node:http(s)` with a keep-alive agent instead of the runtime's `fetch`, and an image
 * answer's base64 is lifted out of the raw bytes before the SDK parses them.
 *
 * Why: an image answer is one JSON document of 2–30 MB that is almost all one base64 string. Through
 * `fetch`, it is read as a web stream, joined, decoded from UTF-8 into a string of the same size, and
 * parsed — the parser then copies the base64 into a second string — before the channel decodes it: two
 * multi-megabyte strings on the heap per image, and most of the client's CPU per call. Here the body is
 * kept as the chunks it arrived in, every large `"data": "…"` value (the `inlineData` of an image part)
 * is replaced by a short placeholder, and the SDK parses a body of a few hundred bytes. {@link Lifted}
 * keeps the base64 text as bytes for the call that lifted it; `GeminiWire.makeClient` puts it back into
 * the SDK's answer (as bytes, not a string) before anything reads the answer.
 *
 * What stays exactly as with `fetch`: streaming calls (`alt=sse`) and any request this transport does not
 * handle go to the runtime's `fetch`; an aborted call rejects with the signal's reason; a connection that
 * fails or closes before the whole answer arrived rejects with `TypeError("fetch failed", { cause })`, the
 * error `fetch` gives, so the channels' classifiers see the same thing either way; a compressed answer is
 * decompressed.
 *
 * @since 0.1.0
 */
import * as Http from "node:http"
import * as Https from "node:https"
import * as Zlib from "node:zlib"

/** The `fetch` the SDK is given. @category models */
export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/**
 * The base64 texts lifted from one call's answer, in the order found; a placeholder in the answer names
 * its index here.
 *
 * @category models
 */
export class Lifted {
  /** Each lifted value's ASCII bytes, as views into the answer's chunks (in order; never copied). */
  readonly texts: Array<ReadonlyArray<Uint8Array>> = []
}

/** The placeholder for the n-th lifted value: not valid base64 (`:`), so it can never pass for an image. */
export const placeholderPrefix = "peel-lifted:"

/** Values at least this long are lifted; shorter ones stay in the JSON (cheaper to parse than to move). */
const liftAtLeast = 4096

/** @category models */
export interface Transport {
  /** The `fetch` for calls whose answers nobody lifts from (client-wide `httpOptions.fetch`). */
  readonly fetch: Fetch
  /** The `fetch` for one call: large `"data"` values of its answer go to `lifted`. */
  readonly lifting: (lifted: Lifted) => Fetch
}

/** @category models */
export interface TransportOptions {
  /**
   * Change the outgoing headers, names in lower case (e.g. move the key from `x-goog-api-key` to
   * `authorization: Bearer`).
   */
  readonly headers?: (headers: Record<string, string>) => void
  /** The `fetch` for what this transport does not carry itself; the runtime's by default. */
  readonly fallback?: Fetch
}

/**
 * A transport with its own keep-alive agents (one per protocol), so sockets are reused across calls the
 * way `fetch`'s global dispatcher reuses them.
 *
 * @category constructors
 */
export const make = (options: TransportOptions = {}): Transport => {
  const agents = {
    "http:": new Http.Agent({ keepAlive: true, scheduling: "lifo" }),
    "https:": new Https.Agent({ keepAlive: true, scheduling: "lifo" }),
  }
  const fallback: Fetch = options.fallback ?? ((input, init) => globalThis.fetch(input, init))
  const send = (input: string | URL | Request, init: RequestInit | undefined, lifted: Lifted | undefined) => {
    const headers = headerRecord(init?.headers)
    options.headers?.(headers)
    const changed = { ...init, headers }
    if (input instanceof Request) return fallback(input, changed)
    const url = typeof input === "string" ? new URL(input) : input
    const body = init?.body
    if (
      (url.protocol !== "http:" && url.protocol !== "https:") ||
      url.searchParams.get("alt") === "sse" ||
      !(body === undefined || body === null || typeof body === "string" || body instanceof Uint8Array)
    )
      return fallback(url, changed)
    return request({
      agent: agents[url.protocol],
      url,
      method: init?.method ?? "GET",
      headers,
      body: body ?? undefined,
      signal: init?.signal,
      lifted,
    })
  }
  return {
    fetch: (input, init) => send(input, init, undefined),
    lifting: (lifted) => (input, init) => send(input, init, lifted),
  }
}

const abortReason = (signal: AbortSignal): unknown =>
  signal.reason ?? new DOMException("This operation was aborted", "AbortError")

const fetchFailed = (cause: unknown): TypeError => new TypeError("fetch failed", { cause })

/** Headers as Node's request takes them (names in lower case, repeats joined), from any form `fetch` accepts. */
const headerRecord = (headers: HeadersInit | undefined): Record<string, string> => {
  const record: Record<string, string> = {}
  if (headers === undefined) return record
  const pairs = headers instanceof Headers || Array.isArray(headers) ? headers : Object.entries(headers)
  for (const [name, value] of pairs) {
    const key = name!.toLowerCase()
    record[key] = record[key] === undefined ? value! : `${record[key]}, ${value}`
  }
  return record
}

/** The decompressor for an answer's `content-encoding`, or `undefined` for identity. */
const decoderFor = (encoding: string | undefined): Zlib.Gunzip | Zlib.Inflate | Zlib.BrotliDecompress | undefined => {
  switch (encoding?.trim().toLowerCase()) {
    case "gzip":
    case "x-gzip":
      return Zlib.createGunzip()
    case "deflate":
      return Zlib.createInflate()
    case "br":
      return Zlib.createBrotliDecompress()
    default:
      return undefined
  }
}

/**
 * An answer's headers, as much of `Headers` as a reader of a `Response` uses: names in lower case, repeated
 * fields joined with ", ".
 */
class AnswerHeaders {
  readonly #fields = new Map<string, string>()
  append(name: string, value: string): void {
    const key = name.toLowerCase()
    const before = this.#fields.get(key)
    this.#fields.set(key, before === undefined ? value : `${before}, ${value}`)
  }
  get(name: string): string | null {
    return this.#fields.get(name.toLowerCase()) ?? null
  }
  has(name: string): boolean {
    return this.#fields.has(name.toLowerCase())
  }
  entries(): IterableIterator<[string, string]> {
    return [...this.#fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).values()
  }
  keys(): IterableIterator<string> {
    return [...this.entries()].map(([name]) => name).values()
  }
  values(): IterableIterator<string> {
    return [...this.entries()].map(([, value]) => value).values()
  }
  forEach(each: (value: string, name: string, headers: AnswerHeaders) => void): void {
    for (const [name, value] of this.entries()) each(value, name, this)
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries()
  }
}

const utf8Bom = Buffer.from([0xef, 0xbb, 0xbf])

/**
 * A whole answer, read: what the SDK reads of a `Response` (`ok`, `status`, `statusText`, `headers`,
 * `json()`, `text()`, `arrayBuffer()`; `body` as a web stream only if asked for) without `Response`'s web
 * streams, which cost more than parsing the few hundred bytes left once the image is lifted. `text()` drops
 * a UTF-8 byte order mark and `json()` rejects with a `SyntaxError` on bad JSON, as `fetch`'s do; a body
 * reads once.
 */
class Answer {
  readonly status: number
  readonly statusText: string
  readonly headers: AnswerHeaders
  readonly url: string
  readonly redirected = false
  readonly type = "basic"
  #bytes: Buffer | null
  #used = false
  constructor(status: number, statusText: string, headers: AnswerHeaders, bytes: Buffer | null, url: URL) {
    this.status = status
    this.statusText = statusText
    this.headers = headers
    this.#bytes = bytes
    this.url = url.href
  }
  get ok(): boolean {
    return this.status >= 200 && this.status < 300
  }
  get bodyUsed(): boolean {
    return this.#used
  }
  get body(): ReadableStream<Uint8Array> | null {
    if (this.#bytes === null) return null
    return new Response(this.#take() as Uint8Array<ArrayBuffer>).body
  }
  #take(): Buffer {
    if (this.#used) throw new TypeError("Body is unusable: Body has already been read")
    this.#used = true
    const bytes = this.#bytes ?? Buffer.alloc(0)
    this.#bytes = null
    return bytes
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.#take()
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
  }
  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(await this.arrayBuffer())
  }
  async text(): Promise<string> {
    const bytes = this.#take()
    return (bytes.subarray(0, 3).equals(utf8Bom) ? bytes.subarray(3) : bytes).toString("utf8")
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text())
  }
  clone(): Answer {
    if (this.#used) throw new TypeError("Response.clone: Body has already been consumed.")
    return new Answer(this.status, this.statusText, this.headers, this.#bytes, new URL(this.url))
  }
}

/** Statuses that have no body. */
const nullBodyStatuses = new Set([204, 205, 304])

/**
 * Send the request and collect its answer. The request leaves at the end of this turn of the event loop
 * (`setImmediate`), with every other request started in the same turn, instead of in the middle of the
 * work that started it. Under load this is what lets the upstream take several requests per wake-up:
 * a client at c=64 that writes each request on its own as its caller gets to it makes a Node upstream
 * (the simulator) wake once per request (17,508 `epoll_pwait` for 15,948 requests under strace) where
 * `fetch`'s writes, which land together, cost it one per six; the simulator's CPU per request fell from
 * 0.29–0.31 to 0.21–0.23 ms and Peel's throughput at 1K c=64 from 0.94–0.96× the SDK's to 1.04–1.15×
 * (cli/bench/overhead.ts). A request waits for nothing but the rest of the turn it was made in.
 */
const request = (outgoing: Outgoing): Promise<Response> =>
  new Promise<Response>((resolve, reject) => {
    setImmediate(() => exchange(outgoing, resolve, reject))
  })

/** One request as {@link request} sends it. */
interface Outgoing {
  readonly agent: Http.Agent
  readonly url: URL
  readonly method: string
  readonly headers: Record<string, string>
  readonly body: string | Uint8Array | undefined
  readonly signal: AbortSignal | null | undefined
  readonly lifted: Lifted | undefined
}

/** {@link request}'s work, once the turn it was made in is over. */
const exchange = (
  { agent, url, method, headers: outgoing, body, signal, lifted }: Outgoing,
  resolve: (answer: Response) => void,
  reject: (error: unknown) => void,
): void => {
  if (signal?.aborted === true) {
    reject(abortReason(signal))
    return
  }
  if (body !== undefined) outgoing["content-length"] = String(Buffer.byteLength(body))
  const client = (url.protocol === "https:" ? Https : Http).request(url, { method, headers: outgoing, agent })
  let settled = false
  const fail = (error: unknown) => {
    if (settled) return
    settled = true
    signal?.removeEventListener("abort", onAbort)
    client.destroy()
    reject(error)
  }
  const onAbort = () => fail(abortReason(signal!))
  signal?.addEventListener("abort", onAbort, { once: true })
  client.on("error", (error) => fail(fetchFailed(error)))
  client.on("response", (incoming) => {
    const encoding = incoming.headers["content-encoding"]
    const decoder = decoderFor(typeof encoding === "string" ? encoding : undefined)
    const source = decoder === undefined ? incoming : incoming.pipe(decoder)
    const chunks: Array<Buffer> = []
    let length = 0
    incoming.on("error", (error) => fail(fetchFailed(error)))
    incoming.on("aborted", () => fail(fetchFailed(new Error("the connection closed before the answer ended"))))
    decoder?.on("error", (error) => fail(fetchFailed(error)))
    source.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      length += chunk.length
    })
    source.on("end", () => {
      if (settled) return
      if (!incoming.complete) return fail(fetchFailed(new Error("the connection closed before the answer ended")))
      settled = true
      signal?.removeEventListener("abort", onAbort)
      const status = incoming.statusCode ?? 502
      // What `fetch` does with a status `Response` refuses (below 200 or above 599): reject.
      if (status < 200 || status > 599) return reject(fetchFailed(new RangeError(`status ${status}`)))
      const headers = new AnswerHeaders()
      for (let index = 0; index < incoming.rawHeaders.length; index += 2) {
        const name = incoming.rawHeaders[index]!
        if (decoder !== undefined && /^content-(encoding|length)$/i.test(name)) continue
        headers.append(name, incoming.rawHeaders[index + 1]!)
      }
      const bytes =
        lifted !== undefined && status >= 200 && status < 300
          ? lift(new Segments(chunks), lifted)
          : chunks.length === 1
            ? chunks[0]!
            : Buffer.concat(chunks, length)
      resolve(
        new Answer(
          status,
          incoming.statusMessage ?? "",
          headers,
          nullBodyStatuses.has(status) ? null : bytes,
          url,
        ) as never,
      )
    })
  })
  client.end(body)
}

const quote = 0x22
const backslash = 0x5c
const colon = 0x3a
const dataKey = Buffer.from('"data"')

const isSpace = (byte: number | undefined) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09

/**
 * An answer as the chunks it arrived in, addressed as one run of bytes. The chunks are never joined: a
 * multi-megabyte buffer allocated per answer is what makes V8 collect the whole heap again and again
 * (external memory), while the socket's own chunks die young.
 *
 * @category lifting
 */
export class Segments {
  readonly chunks: ReadonlyArray<Buffer>
  readonly starts: ReadonlyArray<number>
  readonly length: number
  constructor(chunks: ReadonlyArray<Buffer>) {
    this.chunks = chunks
    const starts: Array<number> = []
    let length = 0
    for (const chunk of chunks) {
      starts.push(length)
      length += chunk.length
    }
    this.starts = starts
    this.length = length
  }
  /** The chunk holding `position` (the last chunk for `position === length`). */
  chunkAt(position: number): number {
    let low = 0
    let high = this.chunks.length - 1
    while (low < high) {
      const middle = (low + high + 1) >> 1
      if (this.starts[middle]! <= position) low = middle
      else high = middle - 1
    }
    return low
  }
  byte(position: number): number | undefined {
    if (position < 0 || position >= this.length) return undefined
    const chunk = this.chunkAt(position)
    return this.chunks[chunk]![position - this.starts[chunk]!]
  }
  /** The first `needle` at or after `from`, also one that straddles two chunks; -1 if none. */
  indexOf(needle: Buffer, from: number): number {
    if (from >= this.length) return -1
    for (let chunk = this.chunkAt(from); chunk < this.chunks.length; chunk++) {
      const bytes = this.chunks[chunk]!
      const start = this.starts[chunk]!
      const local = Math.max(0, from - start)
      const found = bytes.indexOf(needle, local)
      if (found !== -1) return start + found
      const next = this.chunks[chunk + 1]
      if (next === undefined) return -1
      const tailFrom = Math.max(local, bytes.length - (needle.length - 1))
      const window = Buffer.concat([bytes.subarray(tailFrom), next.subarray(0, needle.length - 1)])
      const straddling = window.indexOf(needle)
      if (straddling !== -1) return start + tailFrom + straddling
    }
    return -1
  }
  /** The first `byte` in `[from, to)`; -1 if none. */
  indexOfByte(byte: number, from: number, to = this.length): number {
    if (from >= to) return -1
    for (let chunk = this.chunkAt(from); chunk < this.chunks.length && this.starts[chunk]! < to; chunk++) {
      const start = this.starts[chunk]!
      const found = this.chunks[chunk]!.indexOf(byte, Math.max(0, from - start))
      if (found !== -1) return start + found < to ? start + found : -1
    }
    return -1
  }
  /** Views of `[from, to)`, one per chunk it touches (no copy). */
  views(from: number, to: number): Array<Buffer> {
    const views: Array<Buffer> = []
    if (from >= to) return views
    for (let chunk = this.chunkAt(from); chunk < this.chunks.length && this.starts[chunk]! < to; chunk++) {
      const start = this.starts[chunk]!
      const bytes = this.chunks[chunk]!
      views.push(bytes.subarray(Math.max(0, from - start), Math.min(bytes.length, to - start)))
    }
    return views
  }
}

/**
 * The answer with every `"data": "<at least 4 KB without escapes>"` value replaced by `"peel-lifted:N"`,
 * the value's bytes (views into the chunks, not a copy) appended to `lifted`. `"data"` followed by `:` can
 * only be a key: inside a JSON string a quote is always escaped. Anything unexpected (an escape in the
 * value, a value that is not a string) leaves that value where it is. What is left is small, and joined.
 *
 * @category lifting
 */
export const lift = (answer: Segments, lifted: Lifted): Buffer => {
  const pieces: Array<Buffer> = []
  let copied = 0
  let from = 0
  for (;;) {
    const key = answer.indexOf(dataKey, from)
    if (key === -1) break
    let at = key + dataKey.length
    while (isSpace(answer.byte(at))) at++
    from = at
    if (answer.byte(at) !== colon) continue
    at++
    while (isSpace(answer.byte(at))) at++
    if (answer.byte(at) !== quote) continue
    const start = at + 1
    const end = answer.indexOfByte(quote, start)
    if (end === -1) break
    from = end + 1
    if (end - start < liftAtLeast || answer.indexOfByte(backslash, start, end) !== -1) continue
    pieces.push(...answer.views(copied, start), Buffer.from(`${placeholderPrefix}${lifted.texts.length}`, "latin1"))
    lifted.texts.push(answer.views(start, end))
    copied = end
  }
  pieces.push(...answer.views(copied, answer.length))
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces)
}
