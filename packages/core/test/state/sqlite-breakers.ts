/**
 * A second `CircuitBreakerStore` (the store behind the Breakers state service) over a SQLite file, test
 * code: each circuit is one row (JSON), each admission and each recorded outcome one `BEGIN IMMEDIATE`
 * transaction, so instances opened on the same file (two "processes") share circuits. A probe holds a
 * lease (`probeLeaseMillis`): a process that dies mid-probe does not keep the circuit half-open.
 */
import { DatabaseSync } from "node:sqlite"
import { Clock, Duration, Effect, Layer } from "effect"
import { CircuitBreaker } from "effect/persistence"

interface Circuit {
  state: "Closed" | "Open" | "HalfOpen"
  generation: number
  /** Consecutive failures, and the recent outcomes (true: failure) for a rate policy. */
  streak: number
  recent: Array<boolean>
  openUntil: number
  openings: number
  lastOpenFor: number
  /** When a closed circuit forgets its past openings. */
  forgetOpeningsAt: number
  probeUntil: number
}

const fresh = (generation: number): Circuit => ({
  state: "Closed",
  generation,
  streak: 0,
  recent: [],
  openUntil: 0,
  openings: 0,
  lastOpenFor: 0,
  forgetOpeningsAt: 0,
  probeUntil: 0,
})

export const layer = (file: string, probeLeaseMillis = 10_000): Layer.Layer<CircuitBreaker.CircuitBreakerStore> =>
  Layer.effect(
    CircuitBreaker.CircuitBreakerStore,
    Effect.gen(function* () {
      const db = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const opened = new DatabaseSync(file, { timeout: 10_000 })
          opened.exec(`
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS circuits (key TEXT PRIMARY KEY, circuit TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS generations (id INTEGER PRIMARY KEY CHECK (id = 1), next INTEGER NOT NULL);
            INSERT OR IGNORE INTO generations (id, next) VALUES (1, 1);
          `)
          return opened
        }),
        (opened) => Effect.sync(() => opened.close()),
      )
      const transaction = <A>(body: (now: number) => A) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sync(() => {
            db.exec("BEGIN IMMEDIATE")
            try {
              const result = body(now)
              db.exec("COMMIT")
              return result
            } catch (error) {
              db.exec("ROLLBACK")
              throw error
            }
          }),
        )
      const nextGeneration = (): number => {
        const row = db.prepare("UPDATE generations SET next = next + 1 WHERE id = 1 RETURNING next").get()
        return Number(row!.next)
      }
      const read = (key: string): Circuit | undefined => {
        const row = db.prepare("SELECT circuit FROM circuits WHERE key = ?").get(key)
        return row === undefined ? undefined : (JSON.parse(String(row.circuit)) as Circuit)
      }
      const write = (key: string, circuit: Circuit) =>
        db.prepare("INSERT OR REPLACE INTO circuits (key, circuit) VALUES (?, ?)").run(key, JSON.stringify(circuit))
      const openCircuit = (
        key: string,
        circuit: Circuit,
        from: "Closed" | "HalfOpen",
        openFor: Duration.Duration,
        now: number,
      ): CircuitBreaker.Transition => {
        circuit.state = "Open"
        circuit.generation = nextGeneration()
        circuit.lastOpenFor = Duration.toMillis(openFor)
        circuit.openUntil = now + circuit.lastOpenFor
        circuit.openings += 1
        circuit.probeUntil = 0
        circuit.streak = 0
        circuit.recent = []
        write(key, circuit)
        return { key, from, to: "Open", retryAfter: openFor, consecutiveOpenings: circuit.openings }
      }

      return CircuitBreaker.CircuitBreakerStore.of({
        admit: (key) =>
          Effect.flatMap(
            transaction((now): CircuitBreaker.Admission | CircuitBreaker.CircuitBreakerError => {
              const circuit = read(key) ?? fresh(nextGeneration())
              let transition: CircuitBreaker.Transition | undefined
              if (circuit.state === "Closed" && circuit.openings > 0 && now >= circuit.forgetOpeningsAt)
                circuit.openings = 0
              if (circuit.state === "Open") {
                if (now < circuit.openUntil)
                  return new CircuitBreaker.CircuitBreakerError({
                    reason: new CircuitBreaker.CircuitOpen({
                      key,
                      retryAfter: Duration.millis(circuit.openUntil - now),
                    }),
                  })
                circuit.state = "HalfOpen"
                transition = { key, from: "Open", to: "HalfOpen" }
              } else if (circuit.state === "HalfOpen" && circuit.probeUntil > now) {
                return new CircuitBreaker.CircuitBreakerError({ reason: new CircuitBreaker.CircuitHalfOpen({ key }) })
              }
              if (circuit.state === "HalfOpen") {
                // This call is the probe, under a lease (a lapsed lease lets another caller probe).
                circuit.generation = nextGeneration()
                circuit.probeUntil = now + probeLeaseMillis
              }
              write(key, circuit)
              return {
                generation: circuit.generation,
                probe: circuit.state === "HalfOpen",
                consecutiveOpenings: circuit.openings,
                transition,
              }
            }),
            (result) =>
              result instanceof CircuitBreaker.CircuitBreakerError ? Effect.fail(result) : Effect.succeed(result),
          ),
        record: ({ generation, key, openFor, outcome, tripPolicy }) =>
          transaction((now): CircuitBreaker.Transition | undefined => {
            const circuit = read(key)
            // An outcome from an older generation (before an opening, a lapsed probe) says nothing now.
            if (circuit === undefined || circuit.generation !== generation) return undefined
            if (circuit.state === "HalfOpen") {
              if (outcome === "Failure") return openCircuit(key, circuit, "HalfOpen", openFor, now)
              circuit.probeUntil = 0
              if (outcome === "Success") {
                circuit.state = "Closed"
                circuit.generation = nextGeneration()
                circuit.forgetOpeningsAt = now + circuit.lastOpenFor
                circuit.streak = 0
                circuit.recent = []
                write(key, circuit)
                return { key, from: "HalfOpen", to: "Closed" }
              }
              write(key, circuit)
              return undefined
            }
            if (circuit.state !== "Closed" || outcome === "Ignored") return undefined
            const failed = outcome === "Failure"
            circuit.streak = failed ? circuit.streak + 1 : 0
            if (tripPolicy._tag === "Rate") circuit.recent = [...circuit.recent, failed].slice(-tripPolicy.size)
            const failures = circuit.recent.filter((each) => each).length
            const trips =
              tripPolicy._tag === "Consecutive"
                ? circuit.streak >= tripPolicy.failures
                : circuit.recent.length >= tripPolicy.minimumCalls &&
                  failures > 0 &&
                  failures / circuit.recent.length >= tripPolicy.threshold
            if (trips) return openCircuit(key, circuit, "Closed", openFor, now)
            write(key, circuit)
            return undefined
          }),
        state: (key) =>
          transaction((now): CircuitBreaker.State => {
            const circuit = read(key)
            if (circuit === undefined || circuit.state === "Closed") return { _tag: "Closed", key }
            if (circuit.state === "Open")
              return {
                _tag: "Open",
                key,
                retryAfter: Duration.millis(Math.max(0, circuit.openUntil - now)),
                consecutiveOpenings: circuit.openings,
              }
            return {
              _tag: "HalfOpen",
              key,
              probing: circuit.probeUntil > now,
              consecutiveOpenings: circuit.openings,
            }
          }),
      })
    }),
  )
