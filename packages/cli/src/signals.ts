/**
 * SIGINT and SIGTERM. By default a signal interrupts the command at once (in-flight HTTP requests are
 * aborted, channels closed). A command that can stop gracefully — `peel run` — takes the first signal for
 * the lifetime of a Scope with {@link firstSignal} and drains; a second signal always interrupts at once.
 * `bin.ts` routes the process's signals through {@link deliver}.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, type Scope } from "effect"

/** @category models */
export type Signal = "SIGINT" | "SIGTERM"

/** 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM. @category utils */
export const exitCodeOf = (signal: Signal): number => (signal === "SIGINT" ? 130 : 143)

const takers = new Set<(signal: Signal) => void>()
let received: Signal | undefined

/** The first signal the process received, if any. @category utils */
export const receivedSignal = (): Signal | undefined => received

/**
 * Route one process signal: true when a command took it (the first signal, while a command listens with
 * {@link firstSignal}); false when the caller must interrupt the program.
 *
 * @category utils
 */
export const deliver = (signal: Signal): boolean => {
  if (received !== undefined) return false
  received = signal
  if (takers.size === 0) return false
  for (const take of takers) take(signal)
  return true
}

/**
 * Take the first signal while the current Scope is open: the Deferred completes with it, and the program
 * is not interrupted by it.
 *
 * @category constructors
 */
export const firstSignal: Effect.Effect<Deferred.Deferred<Signal>, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const deferred = Deferred.makeUnsafe<Signal>()
    const take = (signal: Signal) => {
      Deferred.doneUnsafe(deferred, Effect.succeed(signal))
    }
    takers.add(take)
    return { deferred, take }
  }),
  ({ take }) =>
    Effect.sync(() => {
      takers.delete(take)
    }),
).pipe(Effect.map(({ deferred }) => deferred))
