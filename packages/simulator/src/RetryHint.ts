/**
 * The retry delays the simulator advertises — Google's `RetryInfo.retryDelay` in a 429 body, and
 * `Retry-After` (plus `retry-after-ms`) headers on OpenRouter and proxy 429s and 503s — on the simulator's
 * time scale, in each wire's exact format.
 *
 * @since 0.2.0
 */

/**
 * A delay as advertised: `millis` of simulated time times `timeScale`, in whole milliseconds (rounded up),
 * never below 1 ms — a zero would read as "no hint" to most clients, and a hint must never tell a client to
 * come back before the simulator lets it.
 */
export const scaledMillis = (millis: number, timeScale: number): number =>
  Math.max(1, Math.ceil(Math.round(millis * timeScale * 1000) / 1000))

/** Google's `RetryInfo.retryDelay` (a protobuf Duration in JSON): seconds, up to millisecond fractions — "34s", "0.034s". */
export const retryDelayText = (millis: number): string => `${Number((millis / 1000).toFixed(3))}s`

/**
 * `Retry-After` is integer seconds (RFC 9110), rounded up so a client that reads only it never comes back
 * early — a sub-second delay says `1`. When the delay is not a whole number of seconds, `retry-after-ms`
 * carries it exactly (the `openai` SDK and many other clients read it first).
 */
export const retryAfterHeaders = (millis: number): Record<string, string> => ({
  "retry-after": String(Math.ceil(millis / 1000)),
  ...(millis % 1000 === 0 ? {} : { "retry-after-ms": String(millis) }),
})
