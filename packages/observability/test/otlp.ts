/** A small OTLP/HTTP (JSON) receiver for tests: collects every span and metric posted to it. */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"

export interface ReceivedSpan {
  readonly service: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  readonly start: bigint
  readonly end: bigint
  readonly attributes: Record<string, unknown>
  readonly status: { readonly code?: number; readonly message?: string } | undefined
}

type AnyValue = {
  stringValue?: string
  boolValue?: boolean
  intValue?: number | string
  doubleValue?: number
}
const plainOf = (value: AnyValue): unknown =>
  value.stringValue ??
  value.boolValue ??
  (value.intValue === undefined ? undefined : Number(value.intValue)) ??
  value.doubleValue

const attributesOf = (list: ReadonlyArray<{ key: string; value: AnyValue }> | undefined) =>
  Object.fromEntries((list ?? []).map((entry) => [entry.key, plainOf(entry.value)]))

export interface Receiver {
  readonly url: string
  readonly spans: Array<ReceivedSpan>
  readonly metricNames: Set<string>
  readonly paths: Array<string>
  readonly close: () => Promise<void>
}

export const startReceiver = (): Promise<Receiver> =>
  new Promise((resolve) => {
    const spans: Array<ReceivedSpan> = []
    const metricNames = new Set<string>()
    const paths: Array<string> = []
    const server: Server = createServer((request, response) => {
      let body = ""
      request.on("data", (chunk: Buffer) => {
        body += chunk.toString()
      })
      request.on("end", () => {
        paths.push(request.url ?? "")
        try {
          const data = JSON.parse(body)
          for (const resource of data.resourceSpans ?? []) {
            const service = String(attributesOf(resource.resource?.attributes)["service.name"])
            for (const scope of resource.scopeSpans ?? [])
              for (const span of scope.spans ?? [])
                spans.push({
                  service,
                  traceId: span.traceId,
                  spanId: span.spanId,
                  parentSpanId: span.parentSpanId || undefined,
                  name: span.name,
                  start: BigInt(span.startTimeUnixNano),
                  end: BigInt(span.endTimeUnixNano),
                  attributes: attributesOf(span.attributes),
                  status: span.status,
                })
          }
          for (const resource of data.resourceMetrics ?? [])
            for (const scope of resource.scopeMetrics ?? [])
              for (const metric of scope.metrics ?? []) metricNames.add(metric.name)
        } catch {
          // not JSON: ignored
        }
        response.writeHead(200, { "content-type": "application/json" })
        response.end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        spans,
        metricNames,
        paths,
        close: () => new Promise((done) => server.close(() => done())),
      })
    })
  })
