/**
 * How Peel writes an amount of money: US dollars to four decimals (`$0.1340`), the precision of an image's
 * price. Every line that prints a cost (run summaries, the journal's totals, batch jobs, estimates' cost
 * lines) goes through {@link format}, so the CLI, logs and the gateway agree to the digit.
 *
 * @since 0.4.0
 */

/** `0.134` → `$0.1340`. @category formatting */
export const format = (usd: number): string => `$${usd.toFixed(4)}`
