/**
 * The benchmark's baseline: the smallest `node:http` pass-through proxy (what the 1.9 ms per image
 * was measured on). It forwards method, path, headers and body to the upstream given as the first argument
 * and streams the answer back. First stdout line: `proxy listening on http://HOST:PORT`.
 */
import { createServer, request } from "node:http"
import type { AddressInfo } from "node:net"

const upstream = new URL(process.argv[2]!)
const server = createServer((incoming, outgoing) => {
  const forward = request(
    {
      host: upstream.hostname,
      port: upstream.port,
      path: incoming.url,
      method: incoming.method,
      headers: incoming.headers,
    },
    (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(outgoing)
    },
  )
  forward.on("error", (error) => {
    process.stderr.write(`proxy: ${error.message}\n`)
    outgoing.destroy()
  })
  incoming.pipe(forward)
})
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`proxy listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`)
})
