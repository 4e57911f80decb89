/**
 * A real gateway in front of a real simulator, both on loopback HTTP in this process, with every access-log
 * line kept for assertions. The upstream key is {@link upstreamKey}: no answer, header or log may hold it.
 */
import { join } from "node:path"
import { Simulator } from "@peel/simulator"
import { Effect, Exit, Scope } from "effect"
import { Gateway } from "../src/index.ts"

export const upstreamKey = "test-upstream-gemini-key-SECRET-9f3a"
export const pipelineFile = join(import.meta.dirname, "fixtures", "gateway.yaml")

export interface Harness {
  readonly sim: Simulator.Handle
  readonly gateway: Gateway.Running
  readonly url: string
  readonly logs: Array<string>
  readonly close: () => Promise<void>
}

export const startGateway = async (
  options: {
    readonly pipeline?: string
    readonly simulator?: Simulator.Options
    readonly gateway?: Partial<Gateway.GatewayOptions>
  } = {},
): Promise<Harness> => {
  const sim = await Simulator.start(options.simulator ?? {})
  const logs: Array<string> = []
  const scope = Effect.runSync(Scope.make())
  const gateway = await Effect.runPromise(
    Gateway.start({
      pipeline: options.pipeline ?? pipelineFile,
      port: 0,
      load: {
        env: { GEMINI_BASE_URL: sim.url, GEMINI_API_KEY: upstreamKey },
        resolveFrom: [import.meta.filename],
      },
      accessLog: (line) => logs.push(line),
      ...options.gateway,
    }).pipe(Scope.provide(scope)),
  )
  return {
    sim,
    gateway,
    url: gateway.url,
    logs,
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await sim.stop()
    },
  }
}
