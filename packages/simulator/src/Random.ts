/**
 * Seeded randomness for the simulator: the same seed gives the same faults and latencies, so a failing
 * benchmark or test can be replayed.
 *
 * @since 0.1.0
 */

/** A uniform generator in [0, 1) (mulberry32). */
export type Random = () => number

export const makeRandom = (seed: number): Random => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A standard normal sample (Box-Muller). */
export const normal = (random: Random): number => {
  const u = Math.max(random(), Number.EPSILON)
  const v = random()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}
