/**
 * The one conformance suite every channel package runs against the simulator. {@link conformance} registers
 * vitest blocks that start one simulator, build the channel with `Plugin.build`, and check the channel
 * contract (DESIGN §5): images of the right pixel size for every claimed model × size × aspect ratio, the
 * outgoing body, every wire failure mapped to the taxonomy, one upstream call per attempt, interruption
 * aborting the HTTP request, refusal before any call, a sane price, and the secret never showing anywhere —
 * also when the upstream echoes it back in an error (the simulator's `echo-key` faults).
 *
 * Each check is also exported as a plain function over a {@link Harness}, so a test can run one directly
 * (the testkit's own tests do, to prove a broken channel fails it).
 *
 * @since 0.1.0
 */
import { inspect } from "node:util"
import { Catalog, Channel, Errors, Image, Plugin } from "@peel/core"
import { Cause, Effect, Exit, Fiber, Option, Result } from "effect"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { attempt } from "./Attempt.ts"
import { defaultErrors, type ErrorExpectation, type ErrorMap, expectedTag } from "./ErrorMaps.ts"
import {
  channelName,
  claimedRequests,
  type Exposure,
  eventually,
  type Harness,
  ledger,
  makeHarness,
  type RecordedRequest,
  recordedRequests,
  sampleRequest,
  settle,
} from "./Harness.ts"

/** What the channel says it can do; success is checked for every combination. @category conformance */
export interface Claims {
  readonly models: ReadonlyArray<string>
  /** Sizes to test; `["1K"]` when omitted. */
  readonly sizes?: ReadonlyArray<Catalog.Size>
  /** Aspect ratios to test; `["1:1"]` when omitted. */
  readonly aspectRatios?: ReadonlyArray<Catalog.AspectRatio>
}

/** @category conformance */
export interface ConformanceOptions<Config> {
  /** The plugin (the channel package's default export). */
  readonly plugin: Channel.ChannelPlugin<Config>
  /** The simulator route the channel calls (`gemini`, `vertex`, `openrouter`, `proxy-chat`, ...). */
  readonly route: string
  /** The channel's YAML block, without `plugin`, for a simulator at `simulatorUrl`. */
  readonly config: (simulatorUrl: string) => unknown
  /** The secret in that block: it must never appear in errors, logs, warnings or results. */
  readonly secret: string
  readonly claims: Claims
  /** Requests (fields over {@link sampleRequest}) the channel must refuse with `Unsupported` and zero calls. */
  readonly unsupported?: ReadonlyArray<Partial<Channel.ChannelRequest>>
  /** Fault → expected error; the map for the route's wire family when omitted (used as given otherwise). */
  readonly errors?: ErrorMap
  /** Check that one recorded upstream request carries what `request` set (model, size, aspect ratio, ...). */
  readonly assertBody: (recorded: RecordedRequest, request: Channel.ChannelRequest) => void
  /** Title of the outer `describe`; `conformance: <plugin name> on <route>` by default. */
  readonly title?: string
}

// ---------------------------------------------------------------------------------------------------
// exposures

const describeRequest = (request: Channel.ChannelRequest): string =>
  `${request.model} ${request.size} ${request.aspectRatio}`

const expose = (harness: Harness, where: string, text: string): Exposure => {
  const exposure = { where, text }
  harness.exposures.push(exposure)
  return exposure
}

const exposeError = (harness: Harness, where: string, error: unknown, cause: Cause.Cause<unknown>): void => {
  const message = typeof error === "object" && error !== null ? String((error as { message?: unknown }).message) : ""
  expose(harness, `${where}: message`, message)
  expose(harness, `${where}: String(error)`, String(error))
  expose(harness, `${where}: JSON.stringify(error)`, JSON.stringify(error) ?? "")
  expose(harness, `${where}: inspect(error)`, inspect(error, { depth: 8 }))
  expose(harness, `${where}: Cause.pretty`, Cause.pretty(cause))
}

/** Fail when the secret appears in any of `exposures` (all the harness has seen when omitted). @category checks */
export const checkNoSecret = (harness: Harness, exposures: ReadonlyArray<Exposure> = harness.exposures): void => {
  for (const exposure of exposures) {
    expect(exposure.text.includes(harness.secret), `the secret appears in ${exposure.where}: ${exposure.text}`).toBe(
      false,
    )
  }
}

/** Run `body` and then check only the exposures it added. */
const scanning = async (harness: Harness, body: () => Promise<void>): Promise<void> => {
  const start = harness.exposures.length
  try {
    await body()
  } finally {
    checkNoSecret(harness, harness.exposures.slice(start))
  }
}

// ---------------------------------------------------------------------------------------------------
// recorded requests and calls

const requestsSince = async (harness: Harness, count: number): Promise<ReadonlyArray<RecordedRequest>> =>
  (await recordedRequests(harness)).slice(count)

const callCount = async (harness: Harness): Promise<number> => (await ledger(harness)).totals.calls

const checkRecordedRequest = (harness: Harness, recorded: RecordedRequest): void => {
  expect(recorded.route, `the channel called ${recorded.method} ${recorded.path} (route ${recorded.route})`).toBe(
    harness.route,
  )
  expect(recorded.path.includes(harness.secret), "the secret is in the request path").toBe(false)
  expect(JSON.stringify(recorded.query ?? null).includes(harness.secret), "the secret is in the query string").toBe(
    false,
  )
  expect(JSON.stringify(recorded.body ?? null).includes(harness.secret), "the secret is in the request body").toBe(
    false,
  )
}

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  return Option.getOrUndefined(Cause.findErrorOption(exit.cause))
}

// ---------------------------------------------------------------------------------------------------
// checks

/**
 * One request that must succeed: not refused, one upstream call on the channel's route, bytes that decode as
 * an image of the catalog's pixel size with the stated `mimeType`, a sane `costUsd`, and a body that passes
 * `assertBody`.
 *
 * @category checks
 */
export const checkSuccess = (
  harness: Harness,
  request: Channel.ChannelRequest,
  assertBody?: (recorded: RecordedRequest, request: Channel.ChannelRequest) => void,
): Promise<void> =>
  scanning(harness, async () => {
    const what = describeRequest(request)
    expect(Channel.refusal(harness.channel, request), `the channel refuses ${what}, which it claims`).toBeUndefined()
    const callsBefore = await callCount(harness)
    const requestsBefore = (await recordedRequests(harness)).length
    const exit = await harness.run(attempt(harness.channel, request))
    if (Exit.isFailure(exit)) {
      exposeError(harness, `error for ${what}`, failureOf(exit), exit.cause)
      throw new Error(`expected an image for ${what}, got: ${Cause.pretty(exit.cause)}`)
    }
    const image = exit.value
    const { bytes: _bytes, ...rest } = image
    expose(harness, `result for ${what}`, JSON.stringify(rest))
    const info = Image.inspectImage(image.bytes)
    expect(info, `the ${image.bytes.length} bytes returned for ${what} are not a whole image`).toBeDefined()
    expect(image.mimeType, `mimeType for ${what}`).toBe(info?.mimeType)
    const dimensions = Catalog.dimensionsOf(request.model, request.size, request.aspectRatio)
    if (dimensions !== undefined) {
      expect([info?.width, info?.height], `pixel size for ${what}`).toEqual([...dimensions])
    }
    if (image.costUsd !== undefined) {
      expect(Number.isFinite(image.costUsd) && image.costUsd >= 0, `costUsd ${image.costUsd} for ${what}`).toBe(true)
    }
    expect((await callCount(harness)) - callsBefore, `upstream calls for one ${what} attempt`).toBe(1)
    const recorded = await requestsSince(harness, requestsBefore)
    expect(recorded.length, `requests recorded for one ${what} attempt`).toBe(1)
    for (const entry of recorded) {
      checkRecordedRequest(harness, entry)
      assertBody?.(entry, request)
    }
  })

/**
 * Script `fault` on the channel's route, make one attempt, and check it fails with the expected error (tag,
 * `channel`, and `retryAfterMs` / `daily` / `status` when asked) after exactly one upstream call.
 *
 * @category checks
 */
export const checkError = (
  harness: Harness,
  fault: string,
  expectation: ErrorExpectation,
  request: Channel.ChannelRequest = sampleRequest(),
): Promise<void> =>
  scanning(harness, async () => {
    const tag = expectedTag(expectation)
    await settle(harness.simulator.script(harness.route, [fault]))
    const callsBefore = await callCount(harness)
    const exit = await harness.run(attempt(harness.channel, request))
    if (Exit.isSuccess(exit)) throw new Error(`fault ${fault}: expected ${tag}, but the channel returned an image`)
    const error = failureOf(exit)
    exposeError(harness, `error for fault ${fault}`, error, exit.cause)
    if (error === undefined) {
      throw new Error(
        `fault ${fault}: expected a ${tag} failure, got a defect or interruption: ${Cause.pretty(exit.cause)}`,
      )
    }
    expect(Errors.isChannelError(error), `fault ${fault}: ${String(error)} is not a channel error`).toBe(true)
    const failure = error as Errors.ChannelError
    expect(failure._tag, `fault ${fault}: ${failure.message}`).toBe(tag)
    expect(failure.channel, `fault ${fault}: the error's channel`).toBe(channelName)
    if (typeof expectation !== "string") {
      if (expectation.retryAfter === true) {
        const retryAfterMs = (failure as { retryAfterMs?: number }).retryAfterMs
        expect(
          typeof retryAfterMs === "number" && Number.isFinite(retryAfterMs) && retryAfterMs > 0,
          `fault ${fault}: retryAfterMs should carry the wire's RetryInfo / Retry-After, got ${retryAfterMs}`,
        ).toBe(true)
      }
      if (expectation.daily !== undefined) {
        expect((failure as { daily?: boolean }).daily === true, `fault ${fault}: daily`).toBe(expectation.daily)
      }
      if (expectation.status !== undefined) expect(failure.status, `fault ${fault}: status`).toBe(expectation.status)
    }
    expect(
      (await callCount(harness)) - callsBefore,
      `fault ${fault}: upstream calls for one attempt (hidden SDK retries?)`,
    ).toBe(1)
  })

/**
 * Script `hang`, fork an attempt, wait until the simulator has the request, interrupt the fiber, and check
 * the fiber stops and the simulator sees the client go away (the HTTP request was aborted).
 *
 * @category checks
 */
export const checkInterruption = (
  harness: Harness,
  request: Channel.ChannelRequest = sampleRequest(),
  timeoutMs = 5_000,
): Promise<void> =>
  scanning(harness, async () => {
    await settle(harness.simulator.script(harness.route, ["hang"]))
    const requestsBefore = (await recordedRequests(harness)).length
    const callsBefore = (await ledger(harness)).calls.length
    const fiber = harness.fork(attempt(harness.channel, request))
    const arrived = await eventually(async () => (await requestsSince(harness, requestsBefore)).length > 0, timeoutMs)
    if (!arrived) {
      await Effect.runPromise(Fiber.interrupt(fiber).pipe(Effect.timeoutOption(timeoutMs)))
      throw new Error(`the simulator saw no request within ${timeoutMs} ms`)
    }
    const stopped = await Effect.runPromise(Fiber.interrupt(fiber).pipe(Effect.timeoutOption(timeoutMs)))
    expect(Option.isSome(stopped), `the attempt did not stop within ${timeoutMs} ms of being interrupted`).toBe(true)
    const aborted = await eventually(
      async () => (await ledger(harness)).calls.slice(callsBefore).some((call) => call.clientWentAway === true),
      timeoutMs,
    )
    expect(aborted, `the simulator did not see the client go away within ${timeoutMs} ms (request not aborted)`).toBe(
      true,
    )
    expect((await ledger(harness)).calls.length - callsBefore, "upstream calls for one interrupted attempt").toBe(1)
  })

/**
 * A request the channel cannot honour: `Channel.refusal` gives a reason, and core's plan leaves the channel
 * out (`NoChannel`, the journal saying `Unsupported`) without any upstream call.
 *
 * @category checks
 */
export const checkRefusal = (harness: Harness, request: Channel.ChannelRequest): Promise<void> =>
  scanning(harness, async () => {
    const what = describeRequest(request)
    const reason = Channel.refusal(harness.channel, request)
    expect(typeof reason === "string" && reason.length > 0, `Channel.refusal gives no reason for ${what}`).toBe(true)
    expose(harness, `refusal of ${what}`, reason ?? "")
    const callsBefore = await callCount(harness)
    const requestsBefore = (await recordedRequests(harness)).length
    const exit = await harness.run(attempt(harness.channel, request))
    if (Exit.isSuccess(exit)) throw new Error(`core served ${what}, which the channel refuses`)
    const error = failureOf(exit)
    exposeError(harness, `error for unsupported ${what}`, error, exit.cause)
    expect((error as { _tag?: string } | undefined)?._tag, `core's answer for ${what}`).toBe("NoChannel")
    expect((await callCount(harness)) - callsBefore, `upstream calls for refused ${what}`).toBe(0)
    expect((await requestsSince(harness, requestsBefore)).length, `requests sent for refused ${what}`).toBe(0)
  })

/** Simulator faults whose answer repeats the caller's credential: an HTTP 401, and the same error inside a 200. */
export const echoFaults = ["echo-key", "echo-key-200"] as const

/**
 * The upstream repeats the channel's own key in its error (`echo-key`: an HTTP 401 in the route's shape;
 * `echo-key-200`: that error inside an HTTP 200). One attempt must fail with a channel error after exactly
 * one upstream call, and the secret must show in none of the error's renderings, the logs or the warnings.
 * The channel must have sent the secret as its credential (header or Bearer token), or the echo proves nothing.
 *
 * @category checks
 */
export const checkEchoedSecret = (
  harness: Harness,
  fault: (typeof echoFaults)[number] = "echo-key",
  request: Channel.ChannelRequest = sampleRequest(),
): Promise<void> =>
  scanning(harness, async () => {
    await settle(harness.simulator.script(harness.route, [fault]))
    const callsBefore = await callCount(harness)
    const requestsBefore = (await recordedRequests(harness)).length
    const exit = await harness.run(attempt(harness.channel, request))
    const sent = await requestsSince(harness, requestsBefore)
    expect(
      sent.some((recorded) =>
        Object.values(recorded.headers ?? {}).some((value) => String(value).includes(harness.secret)),
      ),
      `fault ${fault}: the channel did not send the secret as its credential, so the echo proves nothing`,
    ).toBe(true)
    if (Exit.isSuccess(exit)) {
      const { bytes: _bytes, ...rest } = exit.value
      expose(harness, `result for fault ${fault}`, JSON.stringify(rest))
      throw new Error(`fault ${fault}: the upstream answered an error, but the channel returned an image`)
    }
    const error = failureOf(exit)
    exposeError(harness, `error for fault ${fault}`, error, exit.cause)
    if (error === undefined)
      throw new Error(
        `fault ${fault}: expected a channel error, got a defect or interruption: ${Cause.pretty(exit.cause)}`,
      )
    expect(Errors.isChannelError(error), `fault ${fault}: ${String(error)} is not a channel error`).toBe(true)
    expect((await callCount(harness)) - callsBefore, `fault ${fault}: upstream calls for one attempt`).toBe(1)
  })

/** `price(request)` is a finite, non-negative number. @category checks */
export const checkPrice = (harness: Harness, request: Channel.ChannelRequest): void => {
  const price = harness.channel.price(request)
  expect(
    typeof price === "number" && Number.isFinite(price) && price >= 0,
    `price for ${describeRequest(request)}: ${price}`,
  ).toBe(true)
}

/**
 * The decoded config prints the secret as `<redacted>`: `JSON.stringify`, `String` and `util.inspect` of it
 * never show the secret (config secrets are `Schema.RedactedFromValue(Schema.String)`).
 *
 * @category checks
 */
export const checkRedactedConfig = <Config>(
  plugin: Channel.ChannelPlugin<Config>,
  block: unknown,
  secret: string,
): void => {
  const decoded = Plugin.decodeConfig(plugin, block)
  if (Result.isFailure(decoded)) {
    throw new Error(
      `the block does not decode: ${decoded.failure.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`,
    )
  }
  const config = decoded.success
  for (const [how, text] of [
    ["JSON.stringify", JSON.stringify(config) ?? ""],
    ["String", String(config)],
    ["util.inspect", inspect(config, { depth: 8 })],
  ] as const) {
    expect(text.includes(secret), `${how}(decoded config) shows the secret: ${text}`).toBe(false)
  }
}

// ---------------------------------------------------------------------------------------------------
// the suite

/**
 * Register the conformance suite for one channel plugin. Call once per channel package, at the top level of
 * a test file:
 *
 * ```ts
 * conformance({ plugin, route: "proxy-chat", config: (url) => ({ apiKey: secret, baseUrl: `${url}/v1` }), ... })
 * ```
 *
 * @category conformance
 */
export const conformance = <Config>(options: ConformanceOptions<Config>): void => {
  const errors = options.errors ?? defaultErrors(options.route)
  const successes = claimedRequests(options.claims)
  const unsupported = (options.unsupported ?? []).map((fields, index) =>
    sampleRequest({ id: `conformance-unsupported-${index}`, ...fields }),
  )

  describe(options.title ?? `conformance: ${options.plugin.name} on ${options.route}`, () => {
    let started: Harness | undefined
    const harness = (): Harness => {
      if (started === undefined) throw new Error("the conformance harness did not start (see beforeAll)")
      return started
    }
    beforeAll(async () => {
      started = await makeHarness(options)
    }, 30_000)
    afterAll(async () => {
      await started?.close()
    }, 30_000)
    beforeEach(async () => {
      if (started !== undefined) await settle(started.simulator.reset())
    })

    describe("plugin", () => {
      it("is a channel plugin this core accepts", () => {
        expect(Plugin.checkPlugin(options.plugin)).toBeUndefined()
        expect(harness().channel.name).toBe(channelName)
      })
      it("keeps the secret redacted in its decoded config", () => {
        checkRedactedConfig(options.plugin, options.config(harness().simulator.url), options.secret)
      })
      it("declares the claimed models in its capabilities", () => {
        for (const model of options.claims.models) expect(harness().channel.capabilities.models).toContain(model)
      })
    })

    describe("success for each claimed model × size × aspect ratio", () => {
      for (const request of successes) {
        it(describeRequest(request), () => checkSuccess(harness(), request, options.assertBody), 60_000)
      }
    })

    describe("errors: each wire failure maps to the taxonomy in exactly one upstream call", () => {
      for (const [fault, expectation] of Object.entries(errors)) {
        it(`${fault} → ${expectedTag(expectation)}`, () => checkError(harness(), fault, expectation))
      }
    })

    describe("interruption", () => {
      it("aborts the HTTP request when the attempt is interrupted", () => checkInterruption(harness()), 30_000)
    })

    describe("refusal before any call", () => {
      if (unsupported.length === 0) it.skip("no unsupported requests declared", () => {})
      for (const request of unsupported) {
        it(`refuses ${describeRequest(request)} with Unsupported and no upstream call`, () =>
          checkRefusal(harness(), request))
      }
    })

    describe("price", () => {
      it("is a finite, non-negative number for every claimed request", () => {
        for (const request of successes) checkPrice(harness(), request)
      })
    })

    describe("secrets", () => {
      for (const fault of echoFaults) {
        it(`never shows the secret when the upstream echoes it (${fault})`, () => checkEchoedSecret(harness(), fault))
      }
      it("never shows the secret in errors, results, logs or warnings", () => {
        expect(harness().exposures.length, "nothing was captured to search").toBeGreaterThan(0)
        checkNoSecret(harness())
      })
    })
  })
}

/**
 * A key shorter than `Errors.minSecretLength` looks like a placeholder: building the channel from each
 * block made by `blockFor(key)` warns so (`context.warn`), and stays quiet about a real-looking key.
 *
 * @category checks
 */
export const checkPlaceholderKeyWarning = async <Config>(
  plugin: Channel.ChannelPlugin<Config>,
  blockFor: (key: string) => ReadonlyArray<unknown>,
): Promise<void> => {
  const warningsFor = async (block: unknown): Promise<string> => {
    const decoded = Plugin.decodeConfig(plugin, block)
    if (Result.isFailure(decoded)) throw new Error(`the block ${JSON.stringify(block)} does not decode`)
    const warnings: Array<string> = []
    await Effect.runPromise(
      Effect.scoped(
        plugin.make(decoded.success, {
          name: "c",
          file: "/tmp/pipeline.yaml",
          warn: (message) => warnings.push(message),
        }),
      ),
    )
    return warnings.join("\n")
  }
  for (const block of blockFor("x")) expect(await warningsFor(block)).toMatch(/looks like a placeholder/)
  for (const block of blockFor("sk-a-real-looking-key-0123456789"))
    expect(await warningsFor(block)).not.toMatch(/placeholder/)
}
