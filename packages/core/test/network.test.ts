/**
 * The pipeline's `network:` block: decoded strictly (a bad allowHosts entry is reported at its line), and
 * threaded by the runner to reference-image downloads — a loopback URL is refused until the pipeline
 * allows the host.
 */
import { writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Errors, Pipeline, Runner } from "../src/index.ts"

const png = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAADElEQVR4nGNgIAoAAAAnAAHKRxGqAAAAAElFTkSuQmCC",
  "base64",
)
let server: Server
let url: string
beforeAll(async () => {
  server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "image/png" })
    response.end(png)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fox.png`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

const pipelineText = (network: ReadonlyArray<string>) =>
  [
    "version: 1",
    "name: network",
    "channels:",
    "  main: { plugin: ./fixture-plugin.ts, price: 0.134 }",
    ...network,
    "stages:",
    "  - select: { strategy: ordered, channels: [main] }",
    "  - generate: {}",
  ].join("\n")

const load = (network: ReadonlyArray<string>) => {
  const file = join(import.meta.dirname, "fixtures", `network-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(file, pipelineText(network))
  return Effect.runPromiseExit(Pipeline.load(file, { env: {}, today: "2026-11-25" })).finally(() =>
    import("node:fs").then((fs) => fs.rmSync(file, { force: true })),
  )
}

const planWith = (network: ReadonlyArray<string>) =>
  Effect.runPromiseExit(
    Effect.scoped(
      Effect.gen(function* () {
        const pipeline = yield* Effect.promise(() => load(network)).pipe(Effect.flatten)
        const runner = yield* Runner.make(pipeline)
        return yield* runner.plan({ id: "fox", prompt: "a red fox", images: [url] })
      }),
    ),
  )

describe("network: in a pipeline", () => {
  it("decodes allowHosts, downloadTimeout and maxRedirects", async () => {
    const exit = await load([
      "network:",
      '  allowHosts: ["127.0.0.1", images.internal, "10.0.0.0/8"]',
      "  downloadTimeout: 10s",
      "  maxRedirects: 2",
    ])
    if (!Exit.isSuccess(exit)) throw new Error(String(exit.cause))
    expect(exit.value.network).toEqual({
      allowHosts: ["127.0.0.1", "images.internal", "10.0.0.0/8"],
      downloadTimeoutMillis: 10_000,
      maxRedirects: 2,
    })
  })

  it("reports a bad entry, a bad duration and an unknown key at their lines", async () => {
    const exit = await load([
      "network:",
      '  allowHosts: ["10.0.0.0/40", "example/8"]',
      "  downloadTimeout: soon",
      "  allowHost: [x]",
    ])
    if (Exit.isSuccess(exit)) throw new Error("expected the load to fail")
    const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
    const problems = (failure as { error: Errors.ConfigError }).error.problems.map(
      (problem) => `${problem.line}: ${problem.message}`,
    )
    expect(problems).toEqual([
      '6: network.allowHosts.0: "10.0.0.0/40" has a prefix outside 0–32',
      '6: network.allowHosts.1: "example/8" is not a range: write ADDRESS/PREFIX, such as 10.0.0.0/8',
      '7: network.downloadTimeout: expected a duration such as 500ms, 90s, 5m or 1h, got "soon"',
      '8: unknown key "allowHost" at network.allowHost',
    ])
  })

  it("the runner refuses a loopback image URL until the pipeline allows the host", async () => {
    const refused = await planWith([])
    expect(Exit.isFailure(refused) ? String(refused.cause) : "planned").toContain(
      `fox: images[0] (${url}): refused: 127.0.0.1, a loopback address`,
    )
    const allowed = await planWith(["network:", '  allowHosts: ["127.0.0.1"]'])
    if (!Exit.isSuccess(allowed)) throw new Error(String(allowed.cause))
    expect(allowed.value.id).toBe("fox")
  })
})
