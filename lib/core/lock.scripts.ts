import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Every Lua script the library runs, in one place. Each takes n lock keys (n >= 1: a multi-key
 * lock is all or nothing in one script) and compares the caller's token before it touches a key,
 * so an owner whose lease ran out can never delete or extend the lock of the owner after it.
 *
 * Shared conventions:
 * - Times come from Redis (`TIME`), never from a client: queue spots and fencing tokens must not
 *   depend on which machine's clock asked.
 * - A fencing token is max(last token + 1, Redis time in microseconds). The counter alone makes
 *   tokens strictly increasing; seeding it from the clock keeps them increasing when the counter
 *   is gone (expired after a quiet hour, or lost with a Redis restarted without persistence), as
 *   long as that server's clock has not gone back further than the time the counter was gone.
 * - A release publishes on the key's channel: the first waiter of the fair queue as the message,
 *   or '' when nobody queues (any waiter may try).
 */

/** Drops the queue spots whose deadline passed: waiters that gave up or died. */
const PURGE_STALE = `
local function purgeStale(queue, timeouts, nowMs)
  local stale = redis.call('zrangebyscore', timeouts, '-inf', nowMs)
  if #stale > 0 then
    for _, waiter in ipairs(stale) do redis.call('zrem', queue, waiter) end
    redis.call('zremrangebyscore', timeouts, '-inf', nowMs)
  end
end`;

/** Issues the next fencing token for fence keys first..last, sets them all to it, returns it. */
const ISSUE_FENCE = `
local function issueFence(first, last, nowUs, retention)
  local fence = nowUs
  for i = first, last do
    local previous = tonumber(redis.call('get', KEYS[i]))
    if previous and previous >= fence then fence = previous + 1 end
  end
  local token = string.format('%.0f', fence)
  for i = first, last do redis.call('set', KEYS[i], token, 'PX', retention) end
  return token
end`;

/** Redis' clock: microseconds and milliseconds since the epoch. */
const CLOCK = `
local function clock()
  local time = redis.call('time')
  local us = tonumber(time[1]) * 1000000 + tonumber(time[2])
  return us, math.floor(us / 1000)
end`;

/**
 * KEYS: lock 1..n, fence 1..n. ARGV: token, ttl ms, fence retention ms.
 * Returns {1, fencing token} on a grant, else {0, index of a busy key, its PTTL}.
 */
const ACQUIRE = `${CLOCK}${ISSUE_FENCE}
local n = #KEYS / 2
if n > 1 then
  for i = 1, n do
    if redis.call('exists', KEYS[i]) == 1 then return {0, i, redis.call('pttl', KEYS[i])} end
  end
end
for i = 1, n do
  if not redis.call('set', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return {0, i, redis.call('pttl', KEYS[i])}
  end
end
return {1, issueFence(n + 1, 2 * n, clock(), ARGV[3])}`;

/**
 * Fair acquire: granted only when every key is free and the caller is first in every queue (or
 * the queue is empty). Otherwise the caller joins (or refreshes its spot in) every queue, unless
 * its spot timeout is 0 (a single try).
 * KEYS: lock 1..n, fence 1..n, queue 1..n, timeouts 1..n.
 * ARGV: token, ttl ms, fence retention ms, spot timeout ms, channel 1..n.
 * Returns {1, fencing token}, else {0, index of the first key not granted, its PTTL (-2: free
 * but another waiter is first)}.
 */
const ACQUIRE_FAIR = `${CLOCK}${PURGE_STALE}${ISSUE_FENCE}
local nowUs, nowMs = clock()
local n = #KEYS / 4
local token, spotTimeout = ARGV[1], tonumber(ARGV[4])
local blocked, blockedPttl = 0, 0
for i = 1, n do
  local queue = KEYS[2 * n + i]
  purgeStale(queue, KEYS[3 * n + i], nowMs)
  local pttl = redis.call('pttl', KEYS[i])
  local first = redis.call('zrange', queue, 0, 0)[1]
  if pttl == -2 and first and first ~= token then
    -- Free but promised to the first waiter, which may have missed its turn (its predecessor
    -- timed out of the queue, say): remind it.
    redis.call('publish', ARGV[4 + i], first)
  end
  if blocked == 0 and (pttl ~= -2 or (first and first ~= token)) then
    blocked, blockedPttl = i, pttl
  end
end
if blocked == 0 then
  for i = 1, n do
    redis.call('set', KEYS[i], token, 'PX', ARGV[2])
    redis.call('zrem', KEYS[2 * n + i], token)
    redis.call('zrem', KEYS[3 * n + i], token)
  end
  return {1, issueFence(n + 1, 2 * n, nowUs, ARGV[3])}
end
if spotTimeout > 0 then
  for i = 1, n do
    local queue, timeouts = KEYS[2 * n + i], KEYS[3 * n + i]
    -- NX: a waiter that refreshes its spot keeps its place in line.
    redis.call('zadd', queue, 'NX', nowUs, token)
    redis.call('zadd', timeouts, nowMs + spotTimeout, token)
    -- The queue outlives its last live waiter by one spot timeout at most.
    if redis.call('pttl', queue) < spotTimeout then
      redis.call('pexpire', queue, spotTimeout)
      redis.call('pexpire', timeouts, spotTimeout)
    end
  end
end
return {0, blocked, blockedPttl}`;

/** KEYS: lock 1..n. ARGV: token, new lease ms. Resets every lease if the token holds all keys. */
const EXTEND = `
for i = 1, #KEYS do
  if redis.call('get', KEYS[i]) ~= ARGV[1] then return 0 end
end
for i = 1, #KEYS do redis.call('pexpire', KEYS[i], ARGV[2]) end
return 1`;

/**
 * KEYS: lock 1..n, queue 1..n, timeouts 1..n. ARGV: token, channel 1..n.
 * Deletes each key the token holds and wakes its waiters. Returns how many keys were deleted.
 */
const RELEASE = `${CLOCK}${PURGE_STALE}
local n = #KEYS / 3
local released = 0
for i = 1, n do
  if redis.call('get', KEYS[i]) == ARGV[1] then
    redis.call('del', KEYS[i])
    released = released + 1
    local first = ''
    if redis.call('exists', KEYS[n + i]) == 1 then
      local _, nowMs = clock()
      purgeStale(KEYS[n + i], KEYS[2 * n + i], nowMs)
      first = redis.call('zrange', KEYS[n + i], 0, 0)[1] or ''
    end
    redis.call('publish', ARGV[1 + i], first)
  end
end
return released`;

/**
 * A fair waiter gives up: leaves every queue and, where the key is free, wakes the new first.
 * KEYS: lock 1..n, queue 1..n, timeouts 1..n. ARGV: token, channel 1..n.
 */
const LEAVE_QUEUE = `
local n = #KEYS / 3
for i = 1, n do
  redis.call('zrem', KEYS[n + i], ARGV[1])
  redis.call('zrem', KEYS[2 * n + i], ARGV[1])
  if redis.call('exists', KEYS[i]) == 0 then
    local first = redis.call('zrange', KEYS[n + i], 0, 0)[1]
    if first then redis.call('publish', ARGV[1 + i], first) end
  end
end
return 1`;

/**
 * A Lua script run by SHA (EVALSHA), loaded with EVAL on first use or after a server restart
 * (NOSCRIPT). Unlike `defineCommand`, it adds nothing to a client the user passed in.
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/** The scripts, ready to run. */
export const LockScripts = {
  acquire: new LuaScript(ACQUIRE),
  acquireFair: new LuaScript(ACQUIRE_FAIR),
  extend: new LuaScript(EXTEND),
  release: new LuaScript(RELEASE),
  leaveQueue: new LuaScript(LEAVE_QUEUE),
} as const;
