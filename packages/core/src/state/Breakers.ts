/**
 * Circuit breakers' state: the `effect/persistence` `CircuitBreakerStore` (one circuit per key: its
 * state, generation, probe lease and the outcomes its trip policy counts), reused as it is. Its memory
 * store keeps one process's circuits; its Redis store (`CircuitBreaker.layerStoreRedis`) shares them between
 * processes with leased probes, so a process that dies mid-probe does not keep a circuit half-open.
 *
 * @since 0.4.0
 */
import type { Layer } from "effect"
import { CircuitBreaker } from "effect/persistence"

/** The store the `generate` stage's breakers keep their circuits in. @category services */
export const Breakers = CircuitBreaker.CircuitBreakerStore
/** @category services */
export type Breakers = CircuitBreaker.CircuitBreakerStore

/** The circuit's key in the store for a channel (what `policies/Breaker` executes under). @category keys */
export const circuitKey = (channel: string): string => `peel:channel:${channel}`

/** One process's circuits, in memory. @category layers */
export const layerMemory: Layer.Layer<Breakers> = CircuitBreaker.layerStoreMemory()
