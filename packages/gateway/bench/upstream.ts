/**
 * The simulator for the gateway benchmark, in its own process: zero simulated latency, every PNG answer
 * grown to `imageBytes` (the first argument, bytes) so each answer is the size of a real model's.
 * First stdout line: `simulator listening on http://HOST:PORT`.
 */
import { Simulator } from "@peel/simulator"

const handle = await Simulator.start({ port: 0, latency: "0", imageBytes: Number(process.argv[2] ?? 0) })
process.stdout.write(`simulator listening on ${handle.url}\n`)
const stop = () => void handle.stop().then(() => process.exit(0))
process.once("SIGTERM", stop)
process.once("SIGINT", stop)
