/**
 * One request identity: the one function that says what determines an image. Two plans with the same
 * identity ask the upstream for the same image; anything that changes the image changes the identity.
 *
 * **What the identity holds** — everything that reaches the upstream, taken from the finished
 * {@link Plan} (so after routing, defaults and clamping, and with the reference images already loaded):
 * - the whitespace-normalised prompt;
 * - the model the plan settled on (a retired id already mapped to its successor), its size and aspect
 *   ratio — these are where the routing inputs that change the result (`use`, `priority`, a `route`
 *   stage, a model's size clamp) land, so a routing change that changes the image changes the identity;
 * - the reference images **by content**: each one's MIME type and SHA-256 of its bytes, never its path or
 *   URL (replace the bytes behind the same path and the identity changes);
 * - the seed, image-only, provider options (canonical JSON, key order ignored) and the variant of `n`.
 *
 * **What it leaves out**, because it names or routes the request without changing its image: the `id`,
 * `metadata`, `use`/`priority`/`urgency` themselves (only what they route to counts), the candidate
 * channels and which one served (the same model on another channel answers the same request).
 *
 * **The keys derived from it** — each says here what it adds or drops, and nowhere else:
 * | key | where | holds |
 * | --- | --- | --- |
 * | {@link of} | output records (`<id>.<ext>.json` `requestHash`), resume/skip (`Runner`, `OutputDirectory.lookup`) | the identity |
 * | {@link journalKey} | the work journal's request key (`BatchWork.keyOf`) | the request's id + the identity |
 * | `Cache.keyOf` | the image cache | the identity's parts with the model replaced by its **family** (aliases and retired ids of one model share entries); the id is not in it either, so two ids asking the same thing share one entry |
 *
 * Records written before the identity existed (their `requestHash` covered prompt, model, size, ratio,
 * use and priority only) stay readable: `OutputDirectory.lookup` compares them with the old hash of the
 * request ({@link legacyHash}); one that matches counts as current (Peel cannot prove it stale, as with an
 * image that has no record), and the next write replaces it with an identity record.
 *
 * @since 0.4.0
 */
import type { ChannelRequest } from "@peel/contract/Channel"
import { hashParts, version as identityVersion, partsOf } from "../internal/identity.ts"
import { requestHash } from "../output/Output.ts"
import type { Plan } from "./Plan.ts"

/** The tag hashed with the parts (and written into output records); a new version changes it. @category identity */
export const version = identityVersion

/** The identity of the channel request a plan sends: SHA-256 (hex) of its parts. @category identity */
export const ofChannelRequest = (request: ChannelRequest): string => hashParts(version, partsOf(request))

const known = new WeakMap<Plan, string>()

/**
 * The identity of a finished plan: SHA-256 (hex) of what determines its image (see the module docs).
 * Computed once per plan.
 *
 * @category identity
 */
export const of = (plan: Plan): string => {
  const found = known.get(plan)
  if (found !== undefined) return found
  const identity = ofChannelRequest(plan.channelRequest)
  known.set(plan, identity)
  return identity
}

/** The work journal's key of a planned request: its id and its identity. @category keys */
export const journalKey = (plan: Plan): { readonly id: string; readonly hash: string } => ({
  id: plan.id,
  hash: of(plan),
})

/**
 * The hash output records held before the identity (prompt, model, size, ratio, use and priority as
 * written): used only to read those records, never to write new ones.
 *
 * @category legacy
 */
export const legacyHash = requestHash
