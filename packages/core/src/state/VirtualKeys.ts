/**
 * Virtual keys: the keys a gateway hands to its clients instead of the upstream keys, each with its own
 * limits (a budget per window, requests per minute, a model allow-list), kept in a store that every
 * process of a deployment reads live (a key created or revoked is seen by the next request, no restart).
 *
 * **A secret is never stored.** {@link create} draws 256 random bits, writes them as `peel_` + 43 base-62
 * characters, and gives the store only their SHA-256 ({@link hashOf}) and a display prefix (the first
 * {@link prefixLength} characters: `peel_Ab3dE6x`). A high-entropy secret needs no slow hash: nobody can
 * search 2^256 candidates against a leaked table, and one SHA-256 per request keeps authentication cheap.
 * The secret is returned once, to the caller of `create`, and nowhere else (not in a record, an error or a
 * message).
 *
 * **Names** are unique among active keys: revoking a key frees its name for its replacement (rotation).
 * A key's id (`vk_` + 16 hex characters, not secret) names its spend in the spend ledger (`key:ID`), so a
 * replacement starts with a fresh budget while `peel stats --by key` still adds up by name.
 *
 * The store ({@link VirtualKeysShape}) is effectful and every change is one atomic step, so a network
 * store (Postgres: a table with a partial unique index on the active name; Redis: a hash per key and a
 * name index set in one script) implements the same five operations; the contract suite
 * (`core/test/contracts/VirtualKeysContract.ts`) is what it must pass. Two ship: {@link layerMemory} and
 * `VirtualKeysSqlite` (a table in the state folder's SQLite file).
 *
 * @since 0.5.0
 */
import { createHash, randomBytes } from "node:crypto"
import { models as catalogModels, findModel, resolveModel } from "@peel/contract/Catalog"
import { parseMillis, windowProblem } from "@peel/contract/Units"
import { Clock, Context, Effect, Layer, Schema } from "effect"

/** A key's spend cap: `limitUsd` per `window` (fixed windows aligned to the epoch: `1d` is a UTC day). @category model */
export interface KeyBudget {
  readonly limitUsd: number
  /** As written: `1d`, `12h`, `30m`. */
  readonly window: string
}

/** What a key may do; each limit is optional (absent: no limit). @category model */
export interface Limits {
  readonly budget?: KeyBudget
  /** Requests admitted in any 60 s. */
  readonly rpm?: number
  /** The models it may ask for (exact ids); absent: every model the pipeline serves. */
  readonly models?: ReadonlyArray<string>
}

/** A key as the store keeps it: never the secret, only its hash and a display prefix. @category model */
export interface KeyRecord {
  /** `vk_` + 16 hex characters: stable, not secret; names the key's spend. */
  readonly id: string
  readonly name: string
  /** The secret's first {@link prefixLength} characters, to recognise a key in a list. */
  readonly prefix: string
  /** SHA-256 of the secret, hex. */
  readonly hash: string
  readonly limits: Limits
  /** Epoch ms. */
  readonly createdAt: number
  /** Epoch ms; absent while the key is active. */
  readonly revokedAt?: number
}

/** An active key already has this name. @category errors */
export class KeyNameTaken extends Schema.TaggedError<KeyNameTaken>()("KeyNameTaken", {
  name: Schema.String,
  message: Schema.String,
}) {
  readonly retryable = false
  static of(name: string): KeyNameTaken {
    return new KeyNameTaken({ name, message: `a key named "${name}" already exists (revoke it first to replace it)` })
  }
}

/** No active key has this name. @category errors */
export class KeyNotFound extends Schema.TaggedError<KeyNotFound>()("KeyNotFound", {
  name: Schema.String,
  message: Schema.String,
}) {
  readonly retryable = false
  static of(name: string): KeyNotFound {
    return new KeyNotFound({ name, message: `no active key named "${name}"` })
  }
}

/** A key's name or limits are not valid. @category errors */
export class InvalidKeySpec extends Schema.TaggedError<InvalidKeySpec>()("InvalidKeySpec", {
  message: Schema.String,
}) {
  readonly retryable = false
}

/** The store could not be read or written (a file, a server); worth trying again. @category errors */
export class KeyStoreError extends Schema.TaggedError<KeyStoreError>()("KeyStoreError", {
  message: Schema.String,
}) {
  readonly retryable = true
}

/** @category model */
export interface VirtualKeysShape {
  /** What it is, for messages (`memory`, `sqlite /path`). */
  readonly describe: string
  /** Store a new key: one atomic step, refused when an active key has its name (or its hash is known). */
  readonly insert: (record: KeyRecord) => Effect.Effect<void, KeyNameTaken | KeyStoreError>
  /** The key whose secret hashes to `hash`, active or revoked; `undefined` when there is none. */
  readonly findByHash: (hash: string) => Effect.Effect<KeyRecord | undefined, KeyStoreError>
  /** Every key, revoked ones too, oldest first. */
  readonly list: Effect.Effect<ReadonlyArray<KeyRecord>, KeyStoreError>
  /** Revoke the active key named `name` (one atomic step) and return it as revoked. */
  readonly revoke: (name: string) => Effect.Effect<KeyRecord, KeyNotFound | KeyStoreError>
  /** Whether any key was ever created (a gateway in `auto` mode is open until then). */
  readonly hasAny: Effect.Effect<boolean, KeyStoreError>
}

/** @category services */
export class VirtualKeys extends Context.Service<VirtualKeys, VirtualKeysShape>()("@peel/core/state/VirtualKeys") {}

// ---------------------------------------------------------------------------------------------------
// secrets

/** What every secret starts with. @category secrets */
export const secretPrefix = "peel_"
/** Characters of the secret kept for display. @category secrets */
export const prefixLength = 12

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
const secretBody = 43
const secretPattern = new RegExp(`^${secretPrefix}[0-9A-Za-z]{${secretBody}}$`)

/** A fresh secret: `peel_` + 43 base-62 characters (256 bits, each byte drawn without bias). @category secrets */
export const newSecret = (): string => {
  let body = ""
  while (body.length < secretBody)
    for (const byte of randomBytes(64)) {
      // 248 = 4 × 62: bytes at or above it are dropped so every character is equally likely.
      if (byte < 248 && body.length < secretBody) body += alphabet[byte % 62]
    }
  return secretPrefix + body
}

/** SHA-256 of a secret, hex: what the store keeps and looks keys up by. @category secrets */
export const hashOf = (secret: string): string => createHash("sha256").update(secret, "utf8").digest("hex")

/** Whether text has the shape of a secret (checked before hashing anything a client sends). @category secrets */
export const looksLikeSecret = (text: string): boolean => secretPattern.test(text)

const newId = (): string => `vk_${randomBytes(8).toString("hex")}`

// ---------------------------------------------------------------------------------------------------
// names and limits

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** Why a key name is not valid, or `undefined` when it is. @category validation */
export const nameProblem = (name: string): string | undefined =>
  namePattern.test(name)
    ? undefined
    : `a key name is 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit; got ${JSON.stringify(name)}`

/** `5/1d`, `$0.50/1h` → a budget; a string saying what is wrong otherwise. @category validation */
export const parseBudget = (text: string): KeyBudget | string => {
  const match = /^\s*\$?\s*(\d+(?:\.\d+)?)\s*\/\s*(\S+)\s*$/.exec(text)
  if (match === null) return `expected a budget as USD/WINDOW such as 5/1d or 0.50/1h, got "${text}"`
  const limitUsd = Number(match[1])
  if (!(limitUsd > 0)) return `a budget is above $0, got "${text}"`
  const millis = parseMillis(match[2]!)
  if (millis === undefined || millis <= 0) return `budget "${text}": ${windowProblem(match[2]!)}`
  return { limitUsd, window: match[2]! }
}

/** A budget as written on the command line: `5/1d`. @category formatting */
export const formatBudget = (budget: KeyBudget): string => `${budget.limitUsd}/${budget.window}`

/** The budget's window in ms. @category model */
export const windowMillis = (budget: KeyBudget): number => parseMillis(budget.window)!

/** Check a key's name and limits; the limits as stored (models trimmed, de-duplicated). @category validation */
export const validate = (name: string, limits: Limits): Effect.Effect<Limits, InvalidKeySpec> =>
  Effect.suspend(() => {
    const problem = nameProblem(name)
    if (problem !== undefined) return Effect.fail(new InvalidKeySpec({ message: problem }))
    if (limits.rpm !== undefined && !(Number.isInteger(limits.rpm) && limits.rpm > 0))
      return Effect.fail(new InvalidKeySpec({ message: `rpm is a whole number above 0, got ${limits.rpm}` }))
    if (limits.budget !== undefined) {
      const { limitUsd, window } = limits.budget
      if (!(Number.isFinite(limitUsd) && limitUsd > 0))
        return Effect.fail(new InvalidKeySpec({ message: `a budget is above $0, got ${limitUsd}` }))
      const millis = parseMillis(window)
      if (millis === undefined || millis <= 0)
        return Effect.fail(new InvalidKeySpec({ message: windowProblem(window) }))
    }
    let models: ReadonlyArray<string> | undefined
    if (limits.models !== undefined) {
      models = [...new Set(limits.models.map((model) => model.trim()))]
      if (models.length === 0 || models.some((model) => model === ""))
        return Effect.fail(new InvalidKeySpec({ message: "models is a list of model ids such as gemini-3-pro-image" }))
      const unknown = models.filter((model) => findModel(model) === undefined)
      if (unknown.length > 0)
        return Effect.fail(
          new InvalidKeySpec({
            message: `unknown model${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}: Peel knows ${Object.keys(catalogModels).join(", ")} (and their aliases)`,
          }),
        )
    }
    return Effect.succeed({
      ...(limits.budget === undefined ? {} : { budget: limits.budget }),
      ...(limits.rpm === undefined ? {} : { rpm: limits.rpm }),
      ...(models === undefined ? {} : { models }),
    })
  })

/**
 * The `ImageRequest.metadata` field a gateway sets to the caller's key name, so the call log's attempt and
 * request lines carry it (`peel stats --by key`). Metadata is not part of a request's identity: two keys
 * asking for the same image still share the cache.
 *
 * @category model
 */
export const metadataField = "peel.key"

/** The key name a request carries in its metadata (set by the gateway), if any. @category model */
export const nameInMetadata = (metadata: Readonly<Record<string, unknown>> | undefined): string | undefined => {
  const value = metadata?.[metadataField]
  return typeof value === "string" ? value : undefined
}

/** The spend ledger's budget name for a key's spend. @category model */
export const spendName = (record: Pick<KeyRecord, "id">): string => `key:${record.id}`

/** The model a name stands for: an alias's id, a retired model's successor (what a request for it gets). @category model */
export const canonicalModel = (name: string): string => {
  const info = findModel(name)
  return info?.status === "retired" && info.successor !== undefined ? info.successor : resolveModel(name)
}

/**
 * Whether the key may ask for `model` (no list: every model). Aliases and retired ids count as the model
 * they stand for, on both sides.
 *
 * @category model
 */
export const allowsModel = (record: KeyRecord, model: string): boolean =>
  record.limits.models === undefined ||
  record.limits.models.some((allowed) => canonicalModel(allowed) === canonicalModel(model))

// ---------------------------------------------------------------------------------------------------
// operations over a store

/** A key just made: its record, and the secret — shown once, never kept. @category model */
export interface Created {
  readonly record: KeyRecord
  readonly secret: string
}

/**
 * Make a key: check its name and limits, draw a secret, store its hash. The secret is in the result and
 * nowhere else.
 *
 * @category operations
 */
export const create = (
  store: VirtualKeysShape,
  name: string,
  limits: Limits,
): Effect.Effect<Created, InvalidKeySpec | KeyNameTaken | KeyStoreError> =>
  Effect.gen(function* () {
    const checked = yield* validate(name, limits)
    const secret = newSecret()
    const record: KeyRecord = {
      id: newId(),
      name,
      prefix: secret.slice(0, prefixLength),
      hash: hashOf(secret),
      limits: checked,
      createdAt: yield* Clock.currentTimeMillis,
    }
    yield* store.insert(record)
    return { record, secret }
  })

/** The key a client presented, or `undefined` (unknown, malformed). Revoked keys are returned as such. @category operations */
export const find = (store: VirtualKeysShape, secret: string): Effect.Effect<KeyRecord | undefined, KeyStoreError> =>
  looksLikeSecret(secret) ? store.findByHash(hashOf(secret)) : Effect.succeed(undefined)

// ---------------------------------------------------------------------------------------------------
// memory

/** One process's keys, in memory (tests; a gateway without a state folder). @category constructors */
export const makeMemory: Effect.Effect<VirtualKeysShape> = Effect.sync(() => {
  const byId = new Map<string, KeyRecord>()
  return {
    describe: "memory",
    insert: (record) =>
      Effect.suspend(() => {
        for (const key of byId.values())
          if ((key.name === record.name && key.revokedAt === undefined) || key.hash === record.hash)
            return Effect.fail(KeyNameTaken.of(record.name))
        byId.set(record.id, record)
        return Effect.void
      }),
    findByHash: (hash) =>
      Effect.sync(() => {
        for (const key of byId.values()) if (key.hash === hash) return key
        return undefined
      }),
    list: Effect.sync(() => [...byId.values()]),
    revoke: (name) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        for (const key of byId.values())
          if (key.name === name && key.revokedAt === undefined) {
            const revoked = { ...key, revokedAt: now }
            byId.set(key.id, revoked)
            return Effect.succeed(revoked)
          }
        return Effect.fail(KeyNotFound.of(name))
      }),
    hasAny: Effect.sync(() => byId.size > 0),
  }
})

/** @category layers */
export const layerMemory: Layer.Layer<VirtualKeys> = Layer.effect(VirtualKeys, makeMemory)

/** A `peel_keys` row (the same columns in SQLite and Postgres) as its record. @category stores */
export const recordOfRow = (row: Readonly<Record<string, unknown>>): KeyRecord => {
  const budget: KeyBudget | undefined =
    row.budget_micros === null || row.budget_window === null
      ? undefined
      : { limitUsd: Number(row.budget_micros) / 1e6, window: String(row.budget_window) }
  const limits: Limits = {
    ...(budget === undefined ? {} : { budget }),
    ...(row.rpm === null ? {} : { rpm: Number(row.rpm) }),
    ...(row.models === null ? {} : { models: JSON.parse(String(row.models)) as ReadonlyArray<string> }),
  }
  return {
    id: String(row.id),
    name: String(row.name),
    prefix: String(row.prefix),
    hash: String(row.hash),
    limits,
    createdAt: Number(row.created_at),
    ...(row.revoked_at === null ? {} : { revokedAt: Number(row.revoked_at) }),
  }
}
