/**
 * `@peel/simulator`: a real HTTP fake of every upstream Peel talks to. `import { Simulator } from "@peel/simulator"`.
 *
 * @since 0.1.0
 */
export * as Simulator from "./Simulator.ts"
