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
 * error, `InvalidRequest`), each with a `_tag`.
 *
 * @since 0.1.0
 */
import { Effect, Exit, Result, Scope } from "effect"
import { InvalidRequest } from "./Errors.ts"
import * as Pipeline from "./Pipeline.ts"
import { decodeRequest, type ImageRequest, type ImageResult } from "./Request.ts"
import * as Runner from "./Runner.ts"

/** @category facade */
export interface PromiseRunner {
  readonly pipeline: Pipeline.Pipeline
  /** Make one image. The request is validated first. */
  readonly generate: (request: ImageRequest) => Promise<ImageResult>
  /** Close every channel. Further calls to `generate` reject. */
  readonly close: () => Promise<void>
}

/** Load a pipeline file and build a runner for it. @category facade */
export const createRunner = async (
  path: string,
  options: Runner.RunnerOptions & Pipeline.LoadOptions = {},
): Promise<PromiseRunner> => {
  const scope = Effect.runSync(Scope.make())
  const runner = await Effect.runPromise(
    Pipeline.load(path, options).pipe(
      Effect.flatMap((pipeline) => Runner.make(pipeline, options)),
      Scope.provide(scope),
      Effect.onError(() => Scope.close(scope, Exit.void)),
    ),
  )
  let closed = false
  return {
    pipeline: runner.pipeline,
    generate: (request) => {
      if (closed) return Promise.reject(new Error("runner is closed"))
      const decoded = decodeRequest(request)
      if (Result.isFailure(decoded)) return Promise.reject(new InvalidRequest({ message: decoded.failure }))
      return Effect.runPromise(runner.run(decoded.success))
    },
    close: async () => {
      if (closed) return
      closed = true
      await Effect.runPromise(Scope.close(scope, Exit.void))
    },
  }
}
