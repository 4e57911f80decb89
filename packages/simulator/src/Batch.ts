/**
 * The Gemini Batch API and the Files API it uses (wire-formats.md §2), as the `@google/genai` SDK calls
 * them: create (inline requests, or a JSONL file uploaded with the resumable Files API), get, list with
 * paging (no `nextPageToken` on the last page — the SDK's pager loops on an empty one), cancel, delete
 * (`DELETE batches/{id}` and `POST batches/{id}:delete`), and result download. Jobs move PENDING →
 * RUNNING → SUCCEEDED on a schedule (scaled by the time scale); results live in `metadata.output`.
 *
 * Faults: when a job is created the route `gemini-batch` draws its fate (`ok`; `500`/`503` → FAILED;
 * `hang` → EXPIRED), and when it completes each request draws its own (`ok`, a content fault such as
 * `safety` inside a successful response, or any error kind → a per-request `error`). Billed at half price.
 *
 * @since 0.1.0
 */
import { Catalog, Pricing } from "@peel/contract"
import { type Answer, type Exchange, type ImageAsk, json } from "./Exchange.ts"
import type { FaultKind, FaultPlan, RouteName } from "./Faults.ts"
import type { Ledger } from "./Ledger.ts"
import * as Gemini from "./routes/gemini.ts"

export interface BatchOptions {
  /** Simulated milliseconds from creation to RUNNING (default 1000). */
  readonly runningAfterMs?: number
  /** Simulated milliseconds from creation to done (default 3000). */
  readonly doneAfterMs?: number
  /** Simulated milliseconds after which an unfinished job is EXPIRED (default 48 h). */
  readonly expireAfterMs?: number
}

interface StoredFile {
  readonly name: string
  readonly mimeType: string
  readonly displayName: string
  bytes: Buffer
  complete: boolean
}

interface InputRequest {
  readonly key: string
  readonly request: unknown
  readonly metadata?: unknown
}

interface Job {
  readonly id: string
  readonly model: string
  readonly displayName: string
  readonly created: number
  readonly createTime: string
  readonly inputs: ReadonlyArray<InputRequest>
  readonly fromFile: boolean
  readonly fate: "ok" | "failed" | "expired"
  state: string
  endTime?: string
  output?: unknown
}

const iso = (millis: number) => new Date(millis).toISOString()

export class BatchService {
  private files = new Map<string, StoredFile>()
  private uploads = new Map<string, StoredFile>()
  private jobs = new Map<string, Job>()
  private counter = 0
  private readonly runningAfter: number
  private readonly doneAfter: number
  private readonly expireAfter: number
  private readonly ledger: Ledger
  private plan: FaultPlan | undefined
  private readonly now: () => number

  constructor(options: { ledger: Ledger; timeScale: number; clock?: () => number; schedule?: BatchOptions }) {
    this.ledger = options.ledger
    this.now = options.clock ?? Date.now
    const scale = options.timeScale
    this.runningAfter = (options.schedule?.runningAfterMs ?? 1000) * scale
    this.doneAfter = (options.schedule?.doneAfterMs ?? 3000) * scale
    this.expireAfter = (options.schedule?.expireAfterMs ?? 48 * 3_600_000) * scale
  }

  /** The route name for a Batch or Files API path, if it is one. */
  match(method: string, path: string): RouteName | undefined {
    if (/^\/upload\/(v1|v1beta)\/files$/.test(path) || path.startsWith("/_simulator/upload/")) return "files"
    if (/^\/(download\/)?(v1|v1beta)\/files\/[^/]+(:download)?$/.test(path)) return "files"
    if (/^\/(v1|v1beta)\/models\/[^/:]+:batchGenerateContent$/.test(path) && method === "POST") return "gemini-batch"
    if (/^\/(v1|v1beta)\/batches(\/[^/]+)?(:cancel|:delete)?$/.test(path)) return "gemini-batch"
    return undefined
  }

  reset(): void {
    this.files.clear()
    this.uploads.clear()
    this.jobs.clear()
  }

  stop(): void {
    this.reset()
  }

  handle(exchange: Exchange, plan: FaultPlan): Answer {
    this.plan = plan
    if (exchange.credential === undefined) return Gemini.unauthenticated()
    const { method, path } = exchange
    if (exchange.route === "files") return this.handleFiles(exchange)
    let found = /^\/(v1|v1beta)\/models\/([^/:]+):batchGenerateContent$/.exec(path)
    if (found !== null) return this.create(found[2]!, exchange.body)
    found = /^\/(v1|v1beta)\/batches$/.exec(path)
    if (found !== null && method === "GET") return this.list(exchange.query)
    found = /^\/(v1|v1beta)\/batches\/([^/:]+)(:cancel|:delete)?$/.exec(path)
    if (found !== null) {
      const job = this.jobs.get(found[2]!)
      if (job === undefined) return Gemini.googleError(404, `Batch batches/${found[2]} not found.`)
      if (found[3] === ":cancel" && method === "POST") {
        this.advance(job)
        if (!job.state.endsWith("SUCCEEDED") && !job.state.endsWith("FAILED")) {
          job.state = "BATCH_STATE_CANCELLED"
          job.endTime = iso(this.now())
        }
        return json(200, {})
      }
      if ((found[3] === ":delete" && method === "POST") || (found[3] === undefined && method === "DELETE")) {
        this.jobs.delete(job.id)
        return json(200, { name: `batches/${job.id}`, done: true })
      }
      if (found[3] === undefined && method === "GET") return json(200, this.operation(job))
    }
    return Gemini.googleError(404, `Method not found: ${method} ${path}`)
  }

  private handleFiles(exchange: Exchange): Answer {
    const { method, path, headers } = exchange
    if (
      /^\/upload\/(v1|v1beta)\/files$/.test(path) &&
      method === "POST" &&
      headers["x-goog-upload-command"] === "start"
    ) {
      const meta = (exchange.body as { file?: { displayName?: string; mimeType?: string } } | undefined)?.file ?? {}
      const id = `sim${++this.counter}`
      const file: StoredFile = {
        name: `files/${id}`,
        mimeType: headers["x-goog-upload-header-content-type"] ?? meta.mimeType ?? "application/octet-stream",
        displayName: meta.displayName ?? id,
        bytes: Buffer.alloc(0),
        complete: false,
      }
      this.uploads.set(id, file)
      const host = headers.host ?? "127.0.0.1"
      return json(
        200,
        {},
        { "x-goog-upload-url": `http://${host}/_simulator/upload/${id}`, "x-goog-upload-status": "active" },
      )
    }
    const upload = /^\/_simulator\/upload\/([^/]+)$/.exec(path)
    if (upload !== null && method === "POST") {
      const file = this.uploads.get(upload[1]!)
      if (file === undefined) return Gemini.googleError(404, "upload session not found")
      file.bytes = Buffer.concat([file.bytes, exchange.rawBody])
      const finalize = (headers["x-goog-upload-command"] ?? "").includes("finalize")
      if (!finalize) return json(200, {}, { "x-goog-upload-status": "active" })
      file.complete = true
      this.uploads.delete(upload[1]!)
      this.files.set(file.name.slice("files/".length), file)
      return json(200, { file: this.fileResource(file) }, { "x-goog-upload-status": "final" })
    }
    const download = /^\/(download\/)?(v1|v1beta)\/files\/([^/:]+)(:download)?$/.exec(path)
    if (download !== null && method === "GET") {
      const file = this.files.get(download[3]!)
      if (file === undefined) return Gemini.googleError(404, `File files/${download[3]} not found.`)
      if (download[4] === ":download" || exchange.query.alt === "media")
        return { status: 200, contentType: file.mimeType, body: file.bytes }
      return json(200, this.fileResource(file))
    }
    return Gemini.googleError(404, `Method not found: ${method} ${path}`)
  }

  private fileResource(file: StoredFile) {
    return {
      name: file.name,
      displayName: file.displayName,
      mimeType: file.mimeType,
      sizeBytes: String(file.bytes.length),
      state: "ACTIVE",
      source: "UPLOADED",
    }
  }

  private create(model: string, body: unknown): Answer {
    if (Catalog.findModel(model) === undefined)
      return Gemini.googleError(404, `models/${model} is not found for API version v1beta.`)
    const batch = (
      body as
        | {
            batch?: {
              displayName?: string
              inputConfig?: { requests?: { requests?: Array<InputRequest> }; fileName?: string }
            }
          }
        | undefined
    )?.batch
    if (batch === undefined || batch.inputConfig === undefined)
      return Gemini.googleError(400, "batch.inputConfig is required.")
    let inputs: Array<InputRequest>
    let fromFile = false
    if (batch.inputConfig.fileName !== undefined) {
      const file = this.files.get(batch.inputConfig.fileName.replace(/^files\//, ""))
      if (file === undefined) return Gemini.googleError(404, `File ${batch.inputConfig.fileName} not found.`)
      fromFile = true
      inputs = []
      for (const [index, line] of file.bytes.toString("utf8").split("\n").entries()) {
        if (line.trim() === "") continue
        try {
          const parsed = JSON.parse(line) as { key?: string; request?: unknown }
          inputs.push({ key: parsed.key ?? `request-${index + 1}`, request: parsed.request })
        } catch {
          return Gemini.googleError(400, `Invalid JSON on line ${index + 1} of ${batch.inputConfig.fileName}.`)
        }
      }
    } else {
      inputs = (batch.inputConfig.requests?.requests ?? []).map((entry, index) => ({
        key: String((entry.metadata as { key?: unknown } | undefined)?.key ?? index),
        request: entry.request,
        metadata: entry.metadata,
      }))
    }
    if (inputs.length === 0) return Gemini.googleError(400, "A batch needs at least one request.")
    const fate = this.plan?.next("gemini-batch", Catalog.resolveModel(model)) ?? "ok"
    const now = this.now()
    const id = `simbatch${++this.counter}`
    const job: Job = {
      id,
      model,
      displayName: batch.displayName ?? id,
      created: now,
      createTime: iso(now),
      inputs,
      fromFile,
      fate: fate === "hang" ? "expired" : fate === "ok" ? "ok" : "failed",
      state: "BATCH_STATE_PENDING",
    }
    this.jobs.set(id, job)
    return json(200, this.operation(job))
  }

  private list(query: Readonly<Record<string, string>>): Answer {
    const pageSize = Math.max(1, Math.min(1000, Number(query.pageSize ?? 50) || 50))
    const start = Number(query.pageToken ?? 0) || 0
    const all = [...this.jobs.values()].reverse()
    const page = all.slice(start, start + pageSize)
    for (const job of page) this.advance(job)
    const next = start + pageSize < all.length ? { nextPageToken: String(start + pageSize) } : {}
    return json(200, { operations: page.map((job) => this.operation(job)), ...next })
  }

  /** Move a job along its schedule; compute results when it completes. */
  private advance(job: Job): void {
    if (!job.state.endsWith("PENDING") && !job.state.endsWith("RUNNING")) return
    const elapsed = this.now() - job.created
    if (job.fate === "expired") {
      if (elapsed >= this.expireAfter) {
        job.state = "BATCH_STATE_EXPIRED"
        job.endTime = iso(this.now())
      } else if (elapsed >= this.runningAfter) job.state = "BATCH_STATE_RUNNING"
      return
    }
    if (elapsed < this.runningAfter) return
    job.state = "BATCH_STATE_RUNNING"
    if (elapsed < this.doneAfter) return
    job.endTime = iso(this.now())
    if (job.fate === "failed") {
      job.state = "BATCH_STATE_FAILED"
      return
    }
    const results = job.inputs.map((input) => this.result(job, input))
    if (job.fromFile) {
      const name = `batch-${job.id}`
      const bytes = Buffer.from(
        `${results.map((result) => JSON.stringify({ key: result.key, ...result.body })).join("\n")}\n`,
      )
      this.files.set(name, {
        name: `files/${name}`,
        mimeType: "application/jsonl",
        displayName: name,
        bytes,
        complete: true,
      })
      job.output = { responsesFile: `files/${name}` }
    } else {
      job.output = {
        inlinedResponses: {
          inlinedResponses: results.map((result) => ({
            ...result.body,
            ...(result.metadata === undefined ? {} : { metadata: result.metadata }),
          })),
        },
      }
    }
    job.state = "BATCH_STATE_SUCCEEDED"
  }

  private result(job: Job, input: InputRequest): { key: string; metadata?: unknown; body: Record<string, unknown> } {
    const base = { key: input.key, ...(input.metadata === undefined ? {} : { metadata: input.metadata }) }
    const request = (input.request ?? {}) as { generationConfig?: unknown; generation_config?: unknown }
    const normalized = { ...request, generationConfig: request.generationConfig ?? request.generation_config }
    const parsed = Gemini.parseAsk(job.model, normalized)
    if (!("prompt" in parsed)) return { ...base, body: { error: { code: 3, message: "Invalid request." } } }
    const ask: ImageAsk = parsed
    const fault: FaultKind = this.plan?.next("gemini-batch", ask.model) ?? "ok"
    const call = this.ledger.open({
      route: "gemini-batch",
      model: ask.model,
      size: ask.size,
      aspectRatio: ask.aspectRatio,
      ...((ask.images ?? 0) > 0 ? { referenceImages: ask.images } : {}),
      ...(ask.seed !== undefined ? { seed: ask.seed } : {}),
    })
    if (fault === "ok" || fault === "safety" || fault === "blocked" || fault === "text-only" || fault === "jpeg") {
      call.status = 200
      call.outcome = fault
      if (fault === "ok" || fault === "jpeg")
        this.ledger.bill(call, Pricing.costFromUsage(ask.model, Gemini.usageOf(ask).usage, "batch"), "batch")
      return { ...base, body: { response: Gemini.generateResponse(ask, fault) } }
    }
    call.status = 200
    call.outcome = fault
    return {
      ...base,
      body: { error: { code: fault === "429" ? 8 : 13, message: `request failed inside the batch (${fault})` } },
    }
  }

  private operation(job: Job): Record<string, unknown> {
    this.advance(job)
    const done = !job.state.endsWith("PENDING") && !job.state.endsWith("RUNNING")
    const count = job.inputs.length
    const succeeded = job.state.endsWith("SUCCEEDED")
    const metadata = {
      "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
      name: `batches/${job.id}`,
      model: `models/${job.model}`,
      displayName: job.displayName,
      createTime: job.createTime,
      updateTime: iso(this.now()),
      ...(job.endTime === undefined ? {} : { endTime: job.endTime }),
      batchStats: {
        requestCount: String(count),
        pendingRequestCount: String(done ? 0 : count),
        successfulRequestCount: String(succeeded ? count : 0),
        failedRequestCount: String(job.state.endsWith("FAILED") ? count : 0),
      },
      state: job.state,
      ...(job.output === undefined ? {} : { output: job.output }),
    }
    return {
      name: `batches/${job.id}`,
      metadata,
      done,
      ...(done && job.output !== undefined
        ? {
            response: {
              "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
              ...(job.output as object),
            },
          }
        : {}),
      ...(job.state.endsWith("FAILED") ? { error: { code: 13, message: "The batch job failed." } } : {}),
    }
  }
}
