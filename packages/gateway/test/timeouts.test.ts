/**
 * Header and idle timeouts close what a slow or idle client holds open: a request whose headers never
 * finish gets 408 and its socket closed; an idle keep-alive connection is closed. Both wait on the
 * socket's own events, with short timeouts given to this gateway.
 */
import { connect, type Socket } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Harness, startGateway } from "./harness.ts"

let h: Harness
beforeAll(async () => {
  h = await startGateway({ gateway: { headersTimeout: 300, requestTimeout: 600, keepAliveTimeout: 200 } })
})
afterAll(async () => {
  await h?.close()
})

const open = (): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> =>
  new Promise((resolve, reject) => {
    const { port } = new URL(h.url)
    const socket = connect(Number(port), "127.0.0.1")
    let data = ""
    socket.on("data", (chunk) => {
      data += chunk.toString()
    })
    const closed = new Promise<void>((done) => socket.on("close", () => done()))
    socket.once("connect", () => resolve({ socket, received: () => data, closed }))
    socket.once("error", reject)
  })

describe("timeouts", () => {
  it("headers that never finish: 408 and the socket closed", async () => {
    const { socket, received, closed } = await open()
    socket.write("POST /v1beta/models/gemini-3-pro-image:generateContent HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    await closed
    expect(received()).toMatch(/^HTTP\/1\.1 408/)
  })

  it("an idle keep-alive connection is closed after its answer", async () => {
    const { socket, received, closed } = await open()
    socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    await closed
    expect(received()).toMatch(/^HTTP\/1\.1 200/)
    expect(received()).toContain('{"status":"ok"}')
  })
})
