/* The Lua scripts of the read-write lock (`mode: 'read' | 'write'`), one key per lock. */
import { CHECK_KEYS, CLOCK, ISSUE_FENCE, TELL_WAITER } from './scripts/shared.lua.js';
import { LuaScript } from './scripts/index.js';
import { CHANNEL_SUFFIX } from '../keys/lock-target.js';

/**
 * A read-write lock in Redis (see docs/protocol.md, "Read-write locks"). KEYS, always the same five
 * (all in the lock key's Cluster slot): 1 the holders, 2 the fencing counter, 3 the writers waiting,
 * 4 the fair queue, 5 the spot deadlines.
 * - Holders: a sorted set, member = 'R' or 'W' + token, score = the ms of Redis' clock its lease
 *   ends. Expired members are removed first by every script (PURGE_RW), so an entry whose lease ran
 *   out never counts, whether the key's own TTL fired yet or not. A writer is alone in the set:
 *   "a writer holds" is "the first member starts with W". The key's PEXPIRE is the latest lease,
 *   so it never outlives its holders.
 * - Writers waiting: member = token, score = arrival (µs). While one waits, no new reader enters
 *   (fair mode: no reader that arrived after it), so readers cannot starve writers.
 * - Fair queue: member = token, score = arrival (µs); spot deadlines: member = token, score = the ms
 *   its spot lapses (every waiting writer has one, fair or not). A waiter that gives up or dies
 *   drops out when its deadline passes.
 * - Times are Redis' (`TIME`), never a client's; a lease still counts on the client from when its
 *   command was sent (`trustedLease`), so the client gives up before Redis does.
 * - Checks before the first write, as the lock scripts do (CHECK_KEYS): a plain lock's string key
 *   answers FOREIGN_KEY_ERROR kind 'rwlock', so one key cannot be used both ways.
 */
/** How many times a waiting writer looks again within its spot timeout (keeping its spot). */
const RW_REFRESHES_PER_SPOT = 3;

const PURGE_RW = `
local function purgeRw(nowMs)
  redis.call('zremrangebyscore', KEYS[1], '-inf', nowMs)
  local stale = redis.call('zrangebyscore', KEYS[5], '-inf', nowMs)
  for _, waiter in ipairs(stale) do
    redis.call('zrem', KEYS[3], waiter)
    redis.call('zrem', KEYS[4], waiter)
  end
  if #stale > 0 then redis.call('zremrangebyscore', KEYS[5], '-inf', nowMs) end
end
local function writerHolds()
  local first = redis.call('zrange', KEYS[1], 0, 0)[1]
  return first ~= nil and string.sub(first, 1, 1) == 'W'
end
-- Every key lives as long as what it holds: the holders until the latest lease, the waiters'
-- keys until the latest spot deadline.
local function tidy(nowMs)
  local top = redis.call('zrange', KEYS[1], -1, -1, 'WITHSCORES')[2]
  if top then redis.call('pexpire', KEYS[1], tonumber(top) - nowMs) end
  local last = redis.call('zrange', KEYS[5], -1, -1, 'WITHSCORES')[2]
  if last then
    for i = 3, 5 do
      if redis.call('exists', KEYS[i]) == 1 then
        redis.call('pexpire', KEYS[i], tonumber(last) - nowMs)
      end
    end
  end
end
local function checkRw()
  local found = redis.call('type', KEYS[1]).ok
  if found ~= 'none' and found ~= 'zset' then return foreignKey(KEYS[1], 'rwlock') end
  return checkKeys(2, 2, 'fence') or checkKeys(3, 5, 'zset')
end`;

/**
 * Wakes whoever may enter now that no writer holds: everyone on the key's channel (waiters that do
 * not queue) and, in the fair queue, the first waiter and, when it is a reader, every reader
 * after it up to the first writer (they may all enter together).
 */
const WAKE_RW = `
local function wakeRw()
  if writerHolds() then return end
  redis.call(PUBLISH, KEYS[1] .. '${CHANNEL_SUFFIX}', '')
  local queued = redis.call('zrange', KEYS[4], 0, -1)
  for place, waiter in ipairs(queued) do
    local writer = redis.call('zscore', KEYS[3], waiter)
    if writer and place > 1 then return end
    tellWaiter(KEYS[1], waiter)
    if writer then return end
  end
end`;

/**
 * ARGV: token, ttl ms, mode ('R' | 'W'), spot timeout ms (0: a single try, no place), fair ('1').
 * A writer enters when nobody holds (fair: and it is first in the queue); a reader when no writer
 * holds and no writer waits (fair: none that arrived before it). Returns the fencing token (> 0)
 * on a grant: a writer's is new; a reader's is the counter, the last writer's (a counter that is
 * gone is seeded from the clock, above every token issued before). Refused: -3 - the ms to look
 * again after (see RW_ACQUIRE's end), never below -2 - 1.
 */
const RW_ACQUIRE = `${CLOCK}${CHECK_KEYS}${ISSUE_FENCE}${TELL_WAITER}${PURGE_RW}
local bad = checkRw()
if bad then return bad end
local token, ttl, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local spot, fair = tonumber(ARGV[4]), ARGV[5] == '1'
local nowUs, nowMs = clock()
purgeRw(nowMs)
local holders = redis.call('zcard', KEYS[1])
local granted
if mode == 'W' then
  granted = holders == 0
  if granted and fair then
    local first = redis.call('zrange', KEYS[4], 0, 0)[1]
    granted = first == nil or first == token
  end
else
  granted = not writerHolds()
  local writer = redis.call('zrange', KEYS[3], 0, 0, 'WITHSCORES')
  if granted and writer[1] then
    local arrived = fair and redis.call('zscore', KEYS[4], token)
    granted = arrived and tonumber(arrived) < tonumber(writer[2])
  end
end
if granted then
  redis.call('zadd', KEYS[1], nowMs + ttl, mode .. token)
  for i = 3, 5 do redis.call('zrem', KEYS[i], token) end
  tidy(nowMs)
  if mode == 'W' then return issueFence(2, 2) end
  local last = fenceOf(KEYS[2])
  if last > 0 then return last end
  return issueFence(2, 2)
end
if spot > 0 and (mode == 'W' or fair) then
  if mode == 'W' then redis.call('zadd', KEYS[3], 'NX', nowUs, token) end
  if fair then redis.call('zadd', KEYS[4], 'NX', nowUs, token) end
  redis.call('zadd', KEYS[5], nowMs + spot, token)
  tidy(nowMs)
end
if fair and holders == 0 then
  -- Free but promised to the first waiter, which may have missed its turn: remind it.
  local first = redis.call('zrange', KEYS[4], 0, 0)[1]
  if first and first ~= token then tellWaiter(KEYS[1], first) end
end
-- When to look again: when the leases in the way end (the latest, for a writer waiting for every
-- reader), or the first waiting writer's spot lapses (a reader kept out by it); a waiting writer
-- also before its own spot lapses, to keep it.
local pttl = -2
if holders > 0 and (mode == 'W' or writerHolds()) then
  pttl = redis.call('pttl', KEYS[1])
elseif mode == 'R' then
  local writer = redis.call('zrange', KEYS[3], 0, 0)[1]
  local lapses = writer and redis.call('zscore', KEYS[5], writer)
  if lapses then pttl = tonumber(lapses) - nowMs end
end
if spot > 0 and mode == 'W' then
  local refresh = math.floor(spot / ${RW_REFRESHES_PER_SPOT})
  if pttl < 0 or pttl > refresh then pttl = refresh end
end
return -3 - pttl`;

/** KEYS as RW_ACQUIRE; ARGV: member ('R'/'W' + token), ttl ms. Resets the lease if still held. */
const RW_EXTEND = `${CLOCK}${CHECK_KEYS}${PURGE_RW}
local bad = checkRw()
if bad then return bad end
local _, nowMs = clock()
purgeRw(nowMs)
if not redis.call('zscore', KEYS[1], ARGV[1]) then return 0 end
redis.call('zadd', KEYS[1], 'XX', nowMs + tonumber(ARGV[2]), ARGV[1])
tidy(nowMs)
return 1`;

/**
 * KEYS as RW_ACQUIRE; ARGV: member ('R'/'W' + token), token. Removes the holder (and any place of
 * the token among the waiters); when nobody holds any more, wakes the waiters. Returns 1 if the
 * member held the lock.
 */
const RW_RELEASE = `${CLOCK}${CHECK_KEYS}${TELL_WAITER}${PURGE_RW}${WAKE_RW}
local bad = checkRw()
if bad then return bad end
local _, nowMs = clock()
purgeRw(nowMs)
local held = redis.call('zrem', KEYS[1], ARGV[1])
for i = 3, 5 do redis.call('zrem', KEYS[i], ARGV[2]) end
if redis.call('zcard', KEYS[1]) == 0 then wakeRw() end
tidy(nowMs)
return held`;

/**
 * A waiter gives up. KEYS as RW_ACQUIRE; ARGV: token. A writer that leaves may let readers in,
 * and the fair queue may have a new first: both are woken when no writer holds.
 */
const RW_LEAVE = `${CLOCK}${CHECK_KEYS}${TELL_WAITER}${PURGE_RW}${WAKE_RW}
local bad = checkRw()
if bad then return bad end
local _, nowMs = clock()
purgeRw(nowMs)
local left = 0
for i = 3, 5 do left = left + redis.call('zrem', KEYS[i], ARGV[1]) end
if left > 0 then wakeRw() end
tidy(nowMs)
return 1`;

function scriptSet(publish: 'publish' | 'spublish') {
  const script = (source: string) => new LuaScript(`local PUBLISH = '${publish}'${source}`);
  return {
    acquire: script(RW_ACQUIRE),
    extend: script(RW_EXTEND),
    release: script(RW_RELEASE),
    leave: script(RW_LEAVE),
  } as const;
}

/**
 * The read-write lock scripts for one Redis (or Sentinel): wake-ups with PUBLISH.
 *
 * @example
 * await RwLockScripts.acquire.run(redis, target.rwKeys, [token, 30_000, 'R', 0, '0']);
 */
export const RwLockScripts = scriptSet('publish');

/**
 * The read-write lock scripts for Redis Cluster: wake-ups with SPUBLISH in the key's shard.
 *
 * @example
 * await ClusterRwLockScripts.release.run(cluster, target.rwKeys, ['R' + token, token]);
 */
export const ClusterRwLockScripts = scriptSet('spublish');

/** One of the two script sets. */
export type RwLockScriptSet = typeof RwLockScripts;
