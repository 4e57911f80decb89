/**
 * The node flags of the `peel` process. A bulk run (`--input FILE`) sizes its heap: before anything is
 * loaded, the process replaces itself (same pid, `process.execve`) with a node started with
 * {@link nodeFlags}, unless they, or heap flags of the user's own, are already given
 * (`PEEL_NODE_FLAGS=0` turns this off). `peel serve` sets its heap's growth rules in place
 * ({@link sizeGatewayHeap}), under the same conditions. Other commands start as they are: the flags cost
 * start-up time that only a long run wins back.
 *
 * @since 0.4.0
 */
import { setFlagsFromString } from "node:v8"

/**
 * V8 flags for the peel process. A bulk run's live heap is small (tens of MB) but it allocates fast (answers,
 * base64 text, images): with V8's defaults the young generation grows to tens of MB and the old one
 * to several times its live size before a full collection, so a 6,000-image run peaked near 400 MB. A
 * small young generation and V8's memory-saving heap growth keep it near the live size (about 22 MB
 * after each full collection, all the way through a 6,000-image run); no hard limit is set, so a run
 * that really needs more memory still gets it. What is left above the heap is mostly compiled code:
 * Maglev, V8's middle compiler, added 12–14 MB of resident memory to a 1K bulk run and kept adding as
 * more code warmed up; without it the run took 4–7% more CPU time (a bulk run waits on the network and
 * the disk). TurboFan, the optimizing compiler, stays: without it too the run was flat at 109 MB but
 * took 40% more CPU time. (cli/bench/memory.ts; 6,000 requests: 134 → 118 MB, 1,500: 119 → 109 MB.)
 */
export const nodeFlags: ReadonlyArray<string> = ["--optimize-for-size", "--max-semi-space-size=1", "--no-maglev"]

/**
 * Environment for the restarted process. glibc gives each thread that allocates its own malloc arena (up to
 * eight per core); the threads that write images, hash and resolve names each leave tens of MB of freed
 * but unreturned memory there. Two arenas hold a 6,000-image run's native memory ~10–15 MB lower at no
 * measurable cost. Ignored by other C libraries; a value of the user's own is kept.
 */
export const nodeEnvironment: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" }

const heapFlag =
  /^--(optimize-for-size|max-semi-space-size|max-old-space-size|max-heap-size|heap-growing-percent|external-memory-accounted-in-global-limit)\b/

/**
 * Whether Peel leaves the heap as it is: `PEEL_NODE_FLAGS=0`, or heap flags of the user's own (argv or
 * NODE_OPTIONS).
 */
const heapLeftAlone = (): boolean =>
  process.env.PEEL_NODE_FLAGS === "0" ||
  [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)].some((flag) => heapFlag.test(flag))

/** A bulk run: requests from a file, a long run that allocates all the way. */
const isBulk = (args: ReadonlyArray<string>): boolean =>
  args.some((arg) => arg === "--input" || arg.startsWith("--input="))

/** Start again with {@link nodeFlags} for a bulk run, when they (or the user's own heap flags) are not in effect. */
export const withNodeFlags = (): void => {
  if (!isBulk(process.argv.slice(2)) || process.platform === "win32" || typeof process.execve !== "function") return
  if (heapLeftAlone()) return
  process.execve(process.execPath, [process.execPath, ...nodeFlags, ...process.execArgv, ...process.argv.slice(1)], {
    ...nodeEnvironment,
    ...process.env,
  })
}

/**
 * How far V8 lets the heap grow past what the last full collection kept, for the gateway: ×4 (V8's own
 * largest factor, which it picks only for some small heaps). A gateway's live heap is small (about 20 MB
 * as published) while every image answer churns megabytes of buffers; with V8's default factor for such
 * a heap (under ×2) the next limit is closer than the young generation is large, so V8 starts a full
 * collection after every two or three images. Measured (gateway bench, 2 MB answers, as published):
 * 42 → 11 full collections for 130 images, CPU per image 22.8 → 10.5 ms at c=1, 13.7 → 12.0 ms at c=8,
 * for a heap that settles near 80 MB instead of 40.
 */
export const gatewayHeapGrowingPercent = 300

/**
 * V8 flags for `peel serve`, set in the running process. Besides the growth factor
 * ({@link gatewayHeapGrowingPercent}): buffers held outside the heap (an image answer's chunks, the
 * decoded image) count toward the same limit as the heap, grown by the same factor, instead of V8's
 * separate rule for them, which starts a full collection every 64 MB of new buffers (every dozen
 * 2 MB images, whatever the heap holds). Measured (gateway bench, 2 MB answers, two runs each side by
 * side): CPU per image 10.7–13.1 → 10.4–10.6 ms at c=1, 10.4–12.6 → 8.9–9.4 at c=8, 10.9–13.7 → 8.1–8.9
 * at c=64 (1.97–2.11× → 1.48× the minimal proxy's), and the p50 the gateway adds at c=64 from
 * 312–406 ms to 137–143 ms; resident memory stays flat over a soak.
 *
 * Measured and left out, for memory: marking only on the event loop's thread (`--no-concurrent-marking`).
 * With concurrent marking, the buffers allocated while a marking runs survive until the next full
 * collection (after two minor collections 16–19 MB of them were still held), so full collections come
 * about 2.5 times as often (86–89 against 28–37 for the same requests). Without it the gateway spent
 * 1.6–2.5 ms less CPU per image at c=1 and 1–1.6 ms less at c=8, but its resident memory in the 4K soak
 * grew to 0.74–1.3 GB (438–563 MB with it); with the growth factor lowered to ×2 to hold memory near
 * 530 MB, the CPU saving was gone. An operator with memory to spare can start `node
 * --no-concurrent-marking …/dist/bin.mjs serve`: not a heap flag, so the two above still apply.
 */
export const gatewayV8Flags: ReadonlyArray<string> = [
  `--heap-growing-percent=${gatewayHeapGrowingPercent}`,
  "--external-memory-accounted-in-global-limit",
]

/**
 * Size the heap for `peel serve`. Both flags are read at every collection, so setting them in the
 * running process, before the gateway starts, is enough: no restart. Left alone like a bulk run's flags.
 */
export const sizeGatewayHeap = (): void => {
  if (!heapLeftAlone()) for (const flag of gatewayV8Flags) setFlagsFromString(flag)
}
