/**
 * The Lua scripts behind the Redis state stores: each service operation that decides (reserve a start,
 * take a slot, reserve money, claim a lease) is ONE script, so it is atomic across every worker sharing
 * the server. Each applies the same rule as the service's memory implementation (`RateLimits.nextStart`,
 * `QuotaPauses.nextPause`, `HedgeBudget.allows`, `ChannelStats.fold`, the spend ledger's book).
 *
 * Time: every script takes `now` (epoch ms) from the caller's Effect `Clock`, like the memory stores —
 * so the rules are exact under `TestClock`, and workers on several machines need clocks kept in step by
 * NTP (a skew of s ms shifts a window by s ms). Expiry is decided by comparing with `now`; the keys'
 * Redis TTLs (`extend`) only collect garbage, a minute after the last moment they can matter.
 *
 * @since 0.5.0
 */
import { Redis } from "effect/persistence"

/** Shared Lua helpers: integer formatting, and a TTL that only grows. */
const prelude = `
local function int(n) return string.format("%.0f", n) end
local function extend(key, ms)
  local want = math.floor(ms) + 60000
  if redis.call("PTTL", key) < want then redis.call("PEXPIRE", key, want) end
end
`

/**
 * RateLimits.acquire / tryAcquire: KEYS[1] a sorted set of reserved starts (score: epoch ms). Drops starts
 * a window old, finds the earliest start that keeps at most `limit` in any window and reserves it (with
 * `nowOnly`: only when it is now), returns the wait (ms), or -1 when the limit allows nothing.
 */
export const rateAcquire = Redis.script(
  (key: string, now: number, limit: number, windowMillis: number, member: string, nowOnly: boolean) => [
    key,
    now,
    limit,
    windowMillis,
    member,
    nowOnly ? 1 : 0,
  ],
  {
    numberOfKeys: 1,
    lua: `${prelude}
local key = KEYS[1]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
redis.call("ZREMRANGEBYSCORE", key, "-inf", int(now - window))
if limit <= 0 then return -1 end
local count = redis.call("ZCARD", key)
local at = now
if count > 0 then
  local last = tonumber(redis.call("ZRANGE", key, -1, -1, "WITHSCORES")[2])
  if last > at then at = last end
  if count >= limit then
    local nth = tonumber(redis.call("ZRANGE", key, -limit, -limit, "WITHSCORES")[2])
    if nth + window > at then at = nth + window end
  end
end
if ARGV[5] == "1" and at ~= now then return int(at - now) end
redis.call("ZADD", key, int(at), ARGV[4])
extend(key, at - now + window)
return int(at - now)
`,
  },
).withReturnType<string | number>()

/** QuotaPauses.pausedUntil: KEYS[1] a hash { until, since }; the pause's end, or 0. */
export const pauseRead = Redis.script((key: string, now: number) => [key, now], {
  numberOfKeys: 1,
  lua: `${prelude}
local until_ = tonumber(redis.call("HGET", KEYS[1], "until") or "0")
if until_ > tonumber(ARGV[1]) then return int(until_) end
return "0"
`,
}).withReturnType<string>()

/** QuotaPauses.pause: `nextPause` over the stored pause; returns the pause's end afterwards (0: none). */
export const pauseSet = Redis.script(
  (key: string, now: number, until: number, sentAt: number) => [key, now, until, sentAt],
  {
    numberOfKeys: 1,
    lua: `${prelude}
local key = KEYS[1]
local now = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local sentAt = tonumber(ARGV[3])
local fields = redis.call("HMGET", key, "until", "since")
local current = tonumber(fields[1])
local since = tonumber(fields[2])
local live = current ~= nil and current > now
local result = 0
if live then result = current end
if wanted > now and ((not live) or (sentAt >= since and wanted > current)) then
  redis.call("HSET", key, "until", int(wanted), "since", int(now))
  redis.call("PEXPIRE", key, math.floor(wanted - now) + 60000)
  result = wanted
end
return int(result)
`,
  },
).withReturnType<string>()

/**
 * Concurrency.acquire: KEYS[1] a sorted set slot id → lease end. A free slot → { 1, 0 }; none →
 * { 0, ms until the first lease runs out }.
 */
export const slotAcquire = Redis.script(
  (key: string, now: number, limit: number, leaseMillis: number, id: string) => [key, now, limit, leaseMillis, id],
  {
    numberOfKeys: 1,
    lua: `${prelude}
local key = KEYS[1]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
redis.call("ZREMRANGEBYSCORE", key, "-inf", int(now))
if redis.call("ZCARD", key) < limit then
  redis.call("ZADD", key, int(now + lease), ARGV[4])
  extend(key, lease)
  return { 1, 0 }
end
local first = tonumber(redis.call("ZRANGE", key, 0, 0, "WITHSCORES")[2])
return { 0, int(first - now) }
`,
  },
).withReturnType<readonly [number, string | number]>()

/** Concurrency.renew: 1 when the slot was still held (and is extended), 0 when its lease had run out. */
export const slotRenew = Redis.script(
  (key: string, now: number, leaseMillis: number, id: string) => [key, now, leaseMillis, id],
  {
    numberOfKeys: 1,
    lua: `${prelude}
local key = KEYS[1]
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
redis.call("ZREMRANGEBYSCORE", key, "-inf", int(now))
if not redis.call("ZSCORE", key, ARGV[3]) then return 0 end
redis.call("ZADD", key, "XX", int(now + lease), ARGV[3])
extend(key, lease)
return 1
`,
  },
).withReturnType<number>()

/** HedgeBudget.recordCall: KEYS[1] calls (sorted set of times). */
export const hedgeRecord = Redis.script(
  (calls: string, now: number, windowMillis: number, member: string) => [calls, now, windowMillis, member],
  {
    numberOfKeys: 1,
    lua: `${prelude}
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", "(" .. int(now - window))
redis.call("ZADD", KEYS[1], int(now), ARGV[3])
extend(KEYS[1], window)
return 1
`,
  },
).withReturnType<number>()

/** HedgeBudget.tryHedge: KEYS calls, hedges; takes a hedge when `HedgeBudget.allows`. 1 taken, 0 not. */
export const hedgeTry = Redis.script(
  (calls: string, hedges: string, now: number, share: number, windowMillis: number, member: string) => [
    calls,
    hedges,
    now,
    share,
    windowMillis,
    member,
  ],
  {
    numberOfKeys: 2,
    lua: `${prelude}
local now = tonumber(ARGV[1])
local share = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local since = "(" .. int(now - window)
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", since)
redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", since)
local calls = redis.call("ZCARD", KEYS[1])
local hedges = redis.call("ZCARD", KEYS[2])
if not (share > 0 and hedges + 1 <= share * calls + 1) then return 0 end
redis.call("ZADD", KEYS[2], int(now), ARGV[4])
extend(KEYS[2], window)
return 1
`,
  },
).withReturnType<number>()

/**
 * ChannelStats.record: KEYS[1] a hash { samples, average }, KEYS[2] the list of recent successful
 * latencies (capped at `kept`); `ChannelStats.fold` in Lua.
 */
export const statsRecord = Redis.script(
  (summary: string, recent: string, latencyMs: number, ok: boolean, alpha: number, kept: number, ttl: number) => [
    summary,
    recent,
    latencyMs,
    ok ? 1 : 0,
    alpha,
    kept,
    ttl,
  ],
  {
    numberOfKeys: 2,
    lua: `${prelude}
local latency = tonumber(ARGV[1])
local ok = ARGV[2] == "1"
local alpha = tonumber(ARGV[3])
local kept = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local fields = redis.call("HMGET", KEYS[1], "samples", "average")
local samples = tonumber(fields[1])
local average = tonumber(fields[2])
local value = latency
if (not ok) and samples ~= nil then value = math.max(latency, 2 * average) end
if samples == nil then
  samples = 1
  average = value
else
  samples = samples + 1
  average = average + alpha * (value - average)
end
redis.call("HSET", KEYS[1], "samples", int(samples), "average", string.format("%.17g", average))
redis.call("PEXPIRE", KEYS[1], ttl)
if ok then
  redis.call("RPUSH", KEYS[2], ARGV[1])
  redis.call("LTRIM", KEYS[2], -kept, -1)
  redis.call("PEXPIRE", KEYS[2], ttl)
end
return 1
`,
  },
).withReturnType<number>()

/** ChannelStats.summary: { samples, average, recent… } in one round trip; false before the first call. */
export const statsRead = Redis.script((summary: string, recent: string) => [summary, recent], {
  numberOfKeys: 2,
  lua: `
local fields = redis.call("HMGET", KEYS[1], "samples", "average")
if not fields[1] then return false end
return { fields[1], fields[2], redis.call("LRANGE", KEYS[2], 0, -1) }
`,
}).withReturnType<readonly [string, string, ReadonlyArray<string>] | null>()

/**
 * The spend ledger's window: KEYS[1] settled spend (integer micro-dollars), KEYS[2] a sorted set of open
 * reservations (id → expiry), KEYS[3] a hash id → micros. Expired reservations are dropped first.
 */
const ledgerPrune = `
local function prune(now)
  local expired = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", int(now))
  if #expired > 0 then
    redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", int(now))
    for i = 1, #expired, 1000 do
      redis.call("HDEL", KEYS[3], unpack(expired, i, math.min(i + 999, #expired)))
    end
  end
  local reserved = 0
  for _, micros in ipairs(redis.call("HVALS", KEYS[3])) do reserved = reserved + tonumber(micros) end
  return tonumber(redis.call("GET", KEYS[1]) or "0"), reserved
end
`

/**
 * SpendLedger.reserve: one atomic check-and-reserve. { 1, expiresAt } reserved; { 0, spent, reserved }
 * refused (spent + reserved + micros would pass the cap; a cap below 0 means none).
 */
export const ledgerReserve = Redis.script(
  (
    keys: readonly [string, string, string],
    now: number,
    micros: number,
    capMicros: number,
    leaseMillis: number,
    id: string,
  ) => [...keys, now, micros, capMicros, leaseMillis, id],
  {
    numberOfKeys: 3,
    lua: `${prelude}${ledgerPrune}
local now = tonumber(ARGV[1])
local micros = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local spent, reserved = prune(now)
if cap >= 0 and spent + reserved + micros > cap then
  return { 0, int(spent), int(reserved) }
end
redis.call("ZADD", KEYS[2], int(now + lease), ARGV[5])
redis.call("HSET", KEYS[3], ARGV[5], int(micros))
extend(KEYS[2], lease)
extend(KEYS[3], lease)
return { 1, int(now + lease) }
`,
  },
).withReturnType<readonly [number, string, string?]>()

/** SpendLedger.settle: drop the reservation (if still there) and add what was spent, in one step. */
export const ledgerSettle = Redis.script(
  (keys: readonly [string, string, string], id: string, micros: number) => [...keys, id, micros],
  {
    numberOfKeys: 3,
    lua: `
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("HDEL", KEYS[3], ARGV[1])
redis.call("INCRBY", KEYS[1], ARGV[2])
return 1
`,
  },
).withReturnType<number>()

/** SpendLedger.release: drop the reservation. */
export const ledgerRelease = Redis.script((keys: readonly [string, string, string], id: string) => [...keys, id], {
  numberOfKeys: 3,
  lua: `
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("HDEL", KEYS[3], ARGV[1])
return 1
`,
}).withReturnType<number>()

/** SpendLedger.balance: { spent, live reserved }. */
export const ledgerBalance = Redis.script((keys: readonly [string, string, string], now: number) => [...keys, now], {
  numberOfKeys: 3,
  lua: `${prelude}${ledgerPrune}
local spent, reserved = prune(tonumber(ARGV[1]))
return { int(spent), int(reserved) }
`,
}).withReturnType<readonly [string, string]>()

/**
 * ImageCache leases: KEYS[1] a hash { owner, expiresAt }. Claim: free or expired → ours, returns the
 * expiry; held by a live other → false.
 */
export const leaseClaim = Redis.script(
  (key: string, now: number, leaseMillis: number, owner: string) => [key, now, leaseMillis, owner],
  {
    numberOfKeys: 1,
    lua: `${prelude}
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local fields = redis.call("HMGET", KEYS[1], "owner", "expiresAt")
if fields[1] and tonumber(fields[2]) > now then return false end
redis.call("HSET", KEYS[1], "owner", ARGV[3], "expiresAt", int(now + lease))
redis.call("PEXPIRE", KEYS[1], math.floor(lease) + 60000)
return int(now + lease)
`,
  },
).withReturnType<string | null>()

/** Renew: ours, or free (expired and not taken) → extended; another's live lease → false. */
export const leaseRenew = Redis.script(
  (key: string, now: number, leaseMillis: number, owner: string) => [key, now, leaseMillis, owner],
  {
    numberOfKeys: 1,
    lua: `${prelude}
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local fields = redis.call("HMGET", KEYS[1], "owner", "expiresAt")
if fields[1] and fields[1] ~= ARGV[3] and tonumber(fields[2]) > now then return false end
redis.call("HSET", KEYS[1], "owner", ARGV[3], "expiresAt", int(now + lease))
redis.call("PEXPIRE", KEYS[1], math.floor(lease) + 60000)
return int(now + lease)
`,
  },
).withReturnType<string | null>()

/** Release: only the owner's lease is removed. */
export const leaseRelease = Redis.script((key: string, owner: string) => [key, owner], {
  numberOfKeys: 1,
  lua: `
if redis.call("HGET", KEYS[1], "owner") == ARGV[1] then redis.call("DEL", KEYS[1]) end
return 1
`,
}).withReturnType<number>()
