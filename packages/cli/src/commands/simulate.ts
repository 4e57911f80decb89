/**
 * `peel simulate`: start the simulator (every upstream's wire format on one port) and keep it running
 * until interrupted. The first line on stdout is `simulator listening on http://HOST:PORT`.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"

export interface SimulateOptions {
  readonly host: string
  readonly port: number
  readonly latency?: string
  readonly faults?: string
  readonly seed?: number
  readonly rpm?: number
  readonly timeScale?: number
}

export const simulate = Effect.fn("simulate")(function* (options: SimulateOptions) {
  const handle = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      // Loaded only for this command, so validate and run start without the simulator's code.
      const { Simulator } = await import("@peel/simulator")
      return Simulator.start({
        host: options.host,
        port: options.port,
        ...(options.latency === undefined ? {} : { latency: options.latency }),
        ...(options.faults === undefined ? {} : { faults: options.faults }),
        ...(options.seed === undefined ? {} : { seed: options.seed }),
        ...(options.rpm === undefined ? {} : { rpm: options.rpm }),
        ...(options.timeScale === undefined ? {} : { timeScale: options.timeScale }),
      })
    }),
    (running) => Effect.promise(() => running.stop()),
  )
  process.stdout.write(`simulator listening on ${handle.url}\n`)
  return yield* Effect.never
})
