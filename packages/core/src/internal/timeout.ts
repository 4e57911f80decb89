import { Clock, Context, Effect, Fiber } from "effect"

/** The clock every fiber has unless a test (TestClock) or a program provides another. */
const realClock = Context.get(Context.empty(), Clock.Clock)

/**
 * `Effect.timeoutOrElse` for the hot path: when `effect` has not finished after `millis`, it is
 * interrupted (and awaited) and `orElse` runs instead. Same meaning as Effect's, but on the real clock
 * it forks one fiber and arms one timer, cancelled on completion, instead of racing two fibers and
 * interrupting the loser on every call. Under another clock (TestClock) it is Effect's own.
 */
export const timeoutOrElse = <A, E, R, A2, E2>(
  effect: Effect.Effect<A, E, R>,
  millis: number,
  orElse: () => Effect.Effect<A2, E2>,
): Effect.Effect<A | A2, E | E2, R> =>
  Effect.withFiber((fiber) => {
    if (fiber.getRef(Clock.Clock) !== realClock || !Number.isFinite(millis))
      return Effect.timeoutOrElse(effect, { duration: millis, orElse })
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.forkChild(restore(effect), { startImmediately: true }), (child) =>
        restore(
          Effect.callback<A | A2, E | E2>((resume) => {
            let timer: ReturnType<typeof setTimeout> | undefined
            const stopObserving = child.addObserver((exit) => {
              if (timer !== undefined) clearTimeout(timer)
              resume(exit)
            })
            if (child.pollUnsafe() !== undefined) return
            timer = setTimeout(() => resume(Effect.flatMap(Fiber.interrupt(child), orElse)), Math.max(0, millis))
            return Effect.suspend(() => {
              clearTimeout(timer)
              stopObserving()
              return Fiber.interrupt(child)
            })
          }),
        ),
      ),
    )
  })

/**
 * Race `effect` against `after()` started once `millis` have passed (`after` decides, e.g. by re-reading
 * an adaptive timeout, when to give up): `Effect.raceFirst(effect, Effect.sleep(millis).pipe(Effect.andThen(after)))`,
 * but on the real clock a call that finishes within `millis` costs one fiber and one cancelled timer,
 * not a second fiber interrupted on every call. Under another clock (TestClock) it is exactly that race.
 */
export const raceAfter = <A, E, R, E2>(
  effect: Effect.Effect<A, E, R>,
  millis: number,
  after: () => Effect.Effect<never, E2>,
): Effect.Effect<A, E | E2, R> =>
  Effect.withFiber((fiber) => {
    if (fiber.getRef(Clock.Clock) !== realClock || !Number.isFinite(millis))
      return Effect.raceFirst(effect, Effect.andThen(Effect.sleep(millis), Effect.suspend(after)))
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Effect.forkChild(restore(effect), { startImmediately: true }), (child) =>
        restore(
          Effect.callback<A, E | E2>((resume) => {
            let timer: ReturnType<typeof setTimeout> | undefined
            const stopObserving = child.addObserver((exit) => {
              if (timer !== undefined) clearTimeout(timer)
              resume(exit)
            })
            if (child.pollUnsafe() !== undefined) return
            timer = setTimeout(
              () => {
                stopObserving()
                resume(Effect.raceFirst(Fiber.join(child), Effect.suspend(after)))
              },
              Math.max(0, millis),
            )
            return Effect.suspend(() => {
              clearTimeout(timer)
              stopObserving()
              return Fiber.interrupt(child)
            })
          }),
        ).pipe(
          // Once the race began, the call is the child's: it ends with the race, whoever won.
          Effect.onExit(() => (child.pollUnsafe() === undefined ? Fiber.interrupt(child) : Effect.void)),
        ),
      ),
    )
  })
