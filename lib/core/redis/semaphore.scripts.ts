/**
 * The Lua scripts of semaphores, beside the lock's (`lock.scripts.ts`) and run the same way.
 *
 * A semaphore on a key is one sorted set (`semaphoreTarget(...).locks[0]`): each member is a
 * holder's token, its score the ms of Redis' clock (`TIME`) at which that holder's lease ends.
 * Holders are stored with their expiry, never as a bare counter, so a crashed holder's permit comes
 * back by itself when its lease ends and nothing can count a permit twice. Every script:
 * - first checks the key is a sorted set or absent, and otherwise answers FOREIGN_KEY_ERROR before
 *   it writes anything (as the lock's scripts do);
 * - drops the holders whose lease ended (score <= now) before it counts or looks up a holder, so a
 *   holder past its lease can neither extend nor be counted;
 * - keeps the key's own TTL at least as long as its latest lease (it only ever raises it), so the
 *   key never lives without a TTL and never expires while a lease in it runs.
 * Leases are counted from Redis' clock at the script's run, which is after the client sent it: a
 * client's lease, counted from the send (`trustedLease`), ends first.
 */
import { FOREIGN_KEY_ERROR } from '../../redis-lock.constants.js';
import { CHANNEL_SUFFIX } from '../keys/lock-target.js';
import { LuaScript } from './scripts/index.js';

/** Checks KEYS[1] is a sorted set or absent, before any write. */
const CHECK = `
local key = KEYS[1]
local found = redis.call('type', key).ok
if found ~= 'none' and found ~= 'zset' then
  return redis.error_reply('${FOREIGN_KEY_ERROR} semaphore ' .. found .. ' ' .. key)
end`;

/** CHECK, then reads Redis' clock (ms) and drops the holders whose lease ended. */
const PREPARE = `${CHECK}
local time = redis.call('time')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('zremrangebyscore', key, '-inf', now)
local function leaseUntil(token, ttl)
  redis.call('zadd', key, now + ttl, token)
  if redis.call('pttl', key) < ttl then redis.call('pexpire', key, ttl) end
end`;

/**
 * KEYS: holders. ARGV: token, ttl ms, permits (N). Grants a permit when fewer than N live holders
 * hold one (the caller's own token counts once: a retry of a granted attempt is granted again), and
 * answers 1; otherwise -3 minus the ms until the first lease ends (always < 0), when a permit comes
 * back even if nobody releases. N is the caller's: changing it affects new grants only.
 */
const ACQUIRE_PERMIT = `${PREPARE}
local ttl = tonumber(ARGV[2])
-- The caller's own token is looked up only when the set is full: the rare retry, not every grant.
if redis.call('zcard', key) < tonumber(ARGV[3]) or redis.call('zscore', key, ARGV[1]) then
  leaseUntil(ARGV[1], ttl)
  return 1
end
local first = redis.call('zrange', key, 0, 0, 'withscores')
return -3 - (tonumber(first[2]) - now)`;

/** KEYS: holders. ARGV: token, new lease ms. 1 if the token holds a live permit (renewed), else 0. */
const EXTEND_PERMIT = `${PREPARE}
if not redis.call('zscore', key, ARGV[1]) then return 0 end
leaseUntil(ARGV[1], tonumber(ARGV[2]))
return 1`;

/**
 * KEYS: holders. ARGV: token. Gives the token's permit back and wakes the waiters on the key's
 * channel. 1 if the token's entry was there, else 0 (dropped after its lease ended). It removes
 * only the caller's own entry, so it needs neither the clock nor the purge: a lapsed lease was
 * already not counted, and the handle itself reports a release after its lease ran out.
 */
const RELEASE_PERMIT = `${CHECK}
if redis.call('zrem', key, ARGV[1]) == 0 then return 0 end
redis.call(PUBLISH, key .. '${CHANNEL_SUFFIX}', '')
return 1`;

/** Every semaphore script, with the given publish command. */
function scriptSet(publish: 'publish' | 'spublish') {
  const script = (source: string) => new LuaScript(`local PUBLISH = '${publish}'${source}`);
  return {
    acquire: script(ACQUIRE_PERMIT),
    extend: script(EXTEND_PERMIT),
    release: script(RELEASE_PERMIT),
  } as const;
}

/** The semaphore scripts for one Redis (or Sentinel). */
export const SemaphoreScripts = scriptSet('publish');

/** The semaphore scripts for Redis Cluster: releases publish with SPUBLISH, in the key's shard. */
export const ClusterSemaphoreScripts = scriptSet('spublish');

/** One of the two script sets. */
export type SemaphoreScriptSet = typeof SemaphoreScripts;
