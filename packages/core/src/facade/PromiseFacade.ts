/**
 * A small Promise facade for programs that do not use Effect:
 *
 * ```ts
 * const runner = await createRunner("pipelines/google-direct.yaml", { outDir: "./out" })
 * const result = await runner.generate({ prompt: "a red fox", size: "2K" })
 * await runner.close()
 * ```
 *
 * Failures reject with Peel's typed errors (`ConfigError`, `RunFailure` whose `reason` is the channel
 * error, `InvalidRequest`), each with a `_tag` to switch on. `generate(request, { signal })` aborts the
 * request (its HTTP call included) when the signal does, rejecting with an `AbortError`;
 * `generateAll(requests, { concurrency, signal, onProgress })` is an async iterable of outcomes in
 * completion order (a request asking for `n` images yields `n` outcomes, ids `ID-1` … `ID-n`).
 *
 * @since 0.1.0
 */

import { InvalidRequest } from "@peel/contract/Errors"
import { decodeRequest, type ImageRequest, type ImageResult } from "@peel/contract/Request"
import { Context, Effect, ManagedRuntime, Result, Stream } from "effect"
import type * as Pipeline from "../config/Pipeline.ts"
import * as Runner from "../runner/Runner.ts"

/** Options of one {@link PromiseRunner.generate} call. @category facade */
export interface GenerateOptions {
  /** Abort the request: the HTTP call in flight is aborted and the promise rejects with an `AbortError`. */
  readonly signal?: AbortSignal | undefined
}

/** Options of {@link PromiseRunner.generateAll}. @category facade */
export interface GenerateAllOptions extends GenerateOptions {
  /** Requests in flight at once (default 4). */
  readonly concurrency?: number | undefined
  /** Called after each outcome with how many are done (successes and failures) so far. */
  readonly onProgress?: ((progress: { readonly done: number; readonly failed: number }) => void) | undefined
}

/** @category facade */
export interface PromiseRunner {
  readonly pipeline: Pipeline.Pipeline
  /** Make one image. The request is validated first; `signal` cancels it. */
  readonly generate: (request: ImageRequest, options?: GenerateOptions) => Promise<ImageResult>
  /**
   * Make many, at most `concurrency` at once: each outcome (`Done`, `Failed` with its typed failure,
   * `Skipped`) as it finishes. Invalid requests are `Failed` outcomes (after the valid ones). Leaving
   * the loop, or aborting `signal` (which ends the iteration), cancels what is still running.
   */
  readonly generateAll: (
    requests: Iterable<ImageRequest> | AsyncIterable<ImageRequest>,
    options?: GenerateAllOptions,
  ) => AsyncIterable<Runner.Outcome>
  /** Close every channel. Further calls to `generate` reject. */
  readonly close: () => Promise<void>
}

/**
 * Load a pipeline file and build a runner for it. The runner lives in one runtime, built here once
 * (channels, stages, state): each `generate` only runs the request in it, with no per-call set-up.
 * `close` disposes the runtime: calls still in flight are interrupted (their HTTP requests aborted),
 * then every channel closes.
 *
 * @category facade
 */
export const createRunner = async (
  path: string,
  options: Runner.RunnerOptions & Pipeline.LoadOptions = {},
): Promise<PromiseRunner> => {
  const runtime = ManagedRuntime.make(Runner.Runner.layer(path, options))
  const runner = await runtime.context().then(
    (context) => Context.get(context, Runner.Runner),
    async (error: unknown) => {
      await runtime.dispose()
      throw error
    },
  )
  let closed = false
  return {
    pipeline: runner.pipeline,
    generate: (request, generateOptions = {}) => {
      if (closed) return Promise.reject(new Error("runner is closed"))
      const decoded = decodeRequest(request)
      if (Result.isFailure(decoded)) return Promise.reject(new InvalidRequest({ message: decoded.failure }))
      const signal = generateOptions.signal
      if (signal === undefined) return runtime.runPromise(runner.run(decoded.success))
      if (signal.aborted) return Promise.reject(abortError(signal))
      return runtime
        .runPromise(runner.run(decoded.success), { signal })
        .catch((error: unknown) => Promise.reject(signal.aborted ? abortError(signal) : error))
    },
    generateAll: (requests, allOptions = {}) => {
      if (closed) throw new Error("runner is closed")
      let done = 0
      let failed = 0
      const checked = Stream.fromAsyncIterable(
        (Symbol.asyncIterator in requests
          ? requests
          : (async function* () {
              yield* requests as Iterable<ImageRequest>
            })()) as AsyncIterable<ImageRequest>,
        (error) => error,
      ).pipe(Stream.orDie)
      const invalid: Array<Runner.Outcome> = []
      const valid = checked.pipe(
        Stream.filter((request) => {
          const decoded = decodeRequest(request)
          if (Result.isSuccess(decoded)) return true
          const id = Runner.requestId(request)
          invalid.push({
            _tag: "Failed",
            request,
            failure: new Runner.RunFailure({
              id,
              error: new InvalidRequest({ message: `${id}: ${decoded.failure}` }),
              attempts: [],
              costUsd: 0,
              latencyMs: 0,
            }),
          })
          return false
        }),
      )
      const outcomes = Stream.concat(
        runner.runAll(valid, { concurrency: allOptions.concurrency ?? 4 }),
        Stream.suspend(() => Stream.fromIterable(invalid)),
      ).pipe(
        Stream.tap((outcome) =>
          Effect.sync(() => {
            done += 1
            if (outcome._tag === "Failed") failed += 1
            allOptions.onProgress?.({ done, failed })
          }),
        ),
        Stream.interruptWhen(abortOf(allOptions.signal)),
      )
      return Stream.toAsyncIterable(outcomes)
    },
    close: async () => {
      if (closed) return
      closed = true
      await runtime.dispose()
    },
  }
}

/** The error an aborted request rejects with: the signal's reason, else a DOMException named `AbortError`. */
const abortError = (signal: AbortSignal): unknown =>
  signal.reason instanceof Error ? signal.reason : new DOMException("the request was aborted", "AbortError")

/** An Effect that completes when `signal` aborts (never, without one). */
const abortOf = (signal: AbortSignal | undefined): Effect.Effect<void> =>
  signal === undefined
    ? Effect.never
    : Effect.callback<void>((resume) => {
        if (signal.aborted) return resume(Effect.void)
        const onAbort = () => resume(Effect.void)
        signal.addEventListener("abort", onAbort, { once: true })
        return Effect.sync(() => signal.removeEventListener("abort", onAbort))
      })
