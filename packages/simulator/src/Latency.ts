/**
 * How long the simulator takes to answer: fixed (`0`, `200ms`, `2s`) or a long-tailed lognormal given by
 * its median and 99th percentile (`lognormal:median=8s,p99=30s`). Every delay is multiplied by the
 * simulator's time scale, so a 20-second generation can take 20 ms in a test.
 *
 * @since 0.1.0
 */
import { Units } from "@peel/contract"
import { normal, type Random } from "./Random.ts"

export type Latency =
  | { readonly _tag: "Fixed"; readonly millis: number }
  | { readonly _tag: "LogNormal"; readonly medianMillis: number; readonly p99Millis: number }

/** `200ms`, `2s` (the units parser of `@peel/contract`) or a bare number of milliseconds. */
const parseDuration = (text: string): number => {
  const millis = /^\d+(?:\.\d+)?$/.test(text.trim()) ? Number(text.trim()) : Units.parseMillis(text)
  if (millis === undefined) throw new Error(`not a duration: "${text}" (use 200ms, 2s or a number of milliseconds)`)
  return millis
}

/** Parse `200ms`, `2s`, `0` or `lognormal:median=8s,p99=30s`. Throws a readable Error on anything else. */
export const parseLatency = (spec: string): Latency => {
  const trimmed = spec.trim()
  if (trimmed.startsWith("lognormal:")) {
    const fields = Object.fromEntries(
      trimmed
        .slice("lognormal:".length)
        .split(",")
        .map((pair) => pair.split("=").map((part) => part.trim()) as [string, string]),
    )
    if (fields.median === undefined || fields.p99 === undefined)
      throw new Error(`lognormal latency needs median and p99, e.g. lognormal:median=8s,p99=30s (got "${spec}")`)
    const medianMillis = parseDuration(fields.median)
    const p99Millis = parseDuration(fields.p99)
    if (p99Millis < medianMillis) throw new Error(`latency p99 (${fields.p99}) is below the median (${fields.median})`)
    return { _tag: "LogNormal", medianMillis, p99Millis }
  }
  return { _tag: "Fixed", millis: parseDuration(trimmed) }
}

/** z-score of the 99th percentile of a standard normal. */
const z99 = 2.326

/** One delay in milliseconds, before time scaling. */
export const sampleLatency = (latency: Latency, random: Random): number => {
  if (latency._tag === "Fixed") return latency.millis
  if (latency.medianMillis === 0) return 0
  const sigma = Math.log(latency.p99Millis / latency.medianMillis) / z99
  return latency.medianMillis * Math.exp(sigma * normal(random))
}
