import { createHash } from 'node:crypto';
import type { RedisClient } from './redis-connection.js';
import {
  CLIENT_ID_BYTES,
  FENCE_RETENTION,
  FENCE_STRIDE,
  FOREIGN_KEY_ERROR,
} from '../../redis-lock.constants.js';
import { CHANNEL_SUFFIX } from '../keys/lock-target.js';
import { foreignKeyMessage } from '../../redis-lock.messages.js';

/**
 * Every Lua script the library runs, in one place. Each takes n lock keys (n >= 1: a multi-key
 * lock is all or nothing in one script) and compares the caller's token before it touches a key,
 * so an owner whose lease ran out can never delete or extend the lock of the owner after it.
 *
 * Shared conventions:
 * - Times come from Redis (`TIME`), never from a client: queue spots and fencing tokens must not
 *   depend on which machine's clock asked.
 * - A fencing token comes from a counter per key, seeded from Redis' clock in microseconds when it
 *   is created. Stepping it up by FENCE_STRIDE makes tokens strictly increasing and leaves the
 *   numbers in between to locks passed on inside a process; seeding from the clock keeps them
 *   increasing when the counter is gone (expired, or lost with a Redis restarted without
 *   persistence), as long as that server's clock has not gone back meanwhile.
 * - A release wakes waiters: when a fair queue holds waiters, it hands the lock to the first and
 *   tells only it (TELL_WAITER), so no other process even wakes up; otherwise everyone on the
 *   key's channel, where the first waiter of each process listens. A key's channel is its lock
 *   key + CHANNEL_SUFFIX.
 * - Constants are written into the scripts rather than passed: fewer arguments on every call.
 * - PUBLISH is `publish` on a single Redis and `spublish` (sharded pub/sub, Redis 7) on a Cluster,
 *   where every channel is in its lock key's slot.
 * - Lua does not roll back: a command that fails after a write leaves that write behind (a lock
 *   key set for a whole ttl, say). So every script first checks each key it will touch (CHECK_KEYS:
 *   its type, and that a fencing counter holds an integer) and, when one was written by someone
 *   else, answers an error reply naming it (FOREIGN_KEY_ERROR) before it writes anything; after
 *   those checks none of its commands can fail. Arguments come from the client, which validated
 *   them, and are not checked again.
 */

/** Drops the queue spots whose deadline passed: waiters that gave up or died. */
export const PURGE_STALE = `
local function purgeStale(queue, timeouts, nowMs)
  local stale = redis.call('zrangebyscore', timeouts, '-inf', nowMs)
  if #stale > 0 then
    for _, waiter in ipairs(stale) do redis.call('zrem', queue, waiter) end
    redis.call('zremrangebyscore', timeouts, '-inf', nowMs)
  end
end`;

/**
 * Checks KEYS[first..last] before a script writes: each must be absent or of type `kind`
 * ('string': lock keys, 'zset': queues) or, for kind 'fence', a fencing counter. Returns nil, or an
 * error reply `FOREIGN_KEY_ERROR <kind> <type found> <key>` for the first that is not.
 * `fenceOf` reads a counter: its number (0 when absent), or nil when it holds anything but the
 * decimal integer the scripts write (a wrong type makes the protected GET return an error table):
 * digits without leading zeros, below 2^53, where Lua's numbers are exact. INCRBY accepts every
 * such value, so it cannot fail on a counter that passed.
 */
export const CHECK_KEYS = `
local function foreignKey(key, kind)
  local found = redis.call('type', key).ok
  return redis.error_reply('${FOREIGN_KEY_ERROR} ' .. kind .. ' ' .. found .. ' ' .. key)
end
local function fenceOf(key)
  local value = redis.pcall('get', key)
  if not value then return 0 end
  if type(value) ~= 'string' or #value > 16 then return nil end
  if not string.match(value, '^[1-9]%d*$') and value ~= '0' then return nil end
  local number = tonumber(value)
  if number >= 9007199254740992 then return nil end
  return number
end
local function checkKeys(first, last, kind)
  for i = first, last do
    local key = KEYS[i]
    if kind == 'fence' then
      if not fenceOf(key) then return foreignKey(key, kind) end
    else
      local found = redis.call('type', key).ok
      if found ~= 'none' and found ~= kind then return foreignKey(key, kind) end
    end
  end
end`;

/**
 * The fencing token of a grant (needs CLOCK and CHECK_KEYS). `nextFence` computes the next token
 * for counters first..last without writing, or returns nil and CHECK_KEYS' error reply for a
 * counter another writer spoilt. One key: the counter + FENCE_STRIDE (stored by INCRBY); a new
 * counter is seeded from Redis' clock. Every grant gives the counter its retention again, so it
 * outlives the key's last grant by FENCE_RETENTION and one-off keys do not pile up (one that
 * expires is re-seeded from the clock, which is past every token it issued). Several keys: one token at least FENCE_STRIDE above all of their
 * counters and not below the clock, stored in each with the retention. `storeFence` writes what
 * `nextFence` gave; `issueFence` does both, for scripts that checked the counters before their
 * first write.
 */
export const ISSUE_FENCE = `
local function nextFence(first, last)
  local top = 0
  for i = first, last do
    local previous = fenceOf(KEYS[i])
    if not previous then return nil, foreignKey(KEYS[i], 'fence') end
    if previous > top then top = previous end
  end
  if first == last and top > 0 then return top + ${FENCE_STRIDE}, true end
  local fence = clock()
  if top + ${FENCE_STRIDE} > fence then fence = top + ${FENCE_STRIDE} end
  return fence, false
end
local function storeFence(first, last, fence, stepped)
  if stepped then
    local next = redis.call('incrby', KEYS[first], ${FENCE_STRIDE})
    redis.call('pexpire', KEYS[first], ${FENCE_RETENTION})
    return next
  end
  local value = string.format('%.0f', fence)
  for i = first, last do redis.call('set', KEYS[i], value, 'PX', ${FENCE_RETENTION}) end
  return fence
end
local function issueFence(first, last)
  local fence, stepped = nextFence(first, last)
  return storeFence(first, last, fence, stepped)
end`;

/**
 * Checks, before the first write, what RELEASE or LEAVE_QUEUE may touch of each key i (KEYS as
 * HAND_OVER): its lock key and queue and, where the queue exists or `always`, its spot deadlines
 * and fencing counter. Without a queue a release reads neither (it deletes the lock and
 * publishes), and the common release is spared two reads. Returns nil or CHECK_KEYS' error reply.
 */
const CHECK_QUEUED = `
local function checkQueued(n, always)
  for i = 1, n do
    local bad = checkKeys(i, i, 'string')
    if bad then return bad end
    local queue = redis.call('type', KEYS[n + i]).ok
    if queue ~= 'none' and queue ~= 'zset' then return foreignKey(KEYS[n + i], 'zset') end
    if always or queue == 'zset' then
      bad = checkKeys(2 * n + i, 2 * n + i, 'zset') or checkKeys(3 * n + i, 3 * n + i, 'fence')
      if bad then return bad end
    end
  end
end`;

/**
 * Tells queued waiter `member` (its token, or token + ':m') to look again at lock key `lock`: on
 * the channel of its client (the key's channel + ':' + the client id its token starts with), where
 * that client's waiters for the key listen; the message is the member, so only that waiter acts
 * on it. A message is only a hint: it says nothing the waiter may count a lease from, since
 * messages and command replies reach the client on different connections, in no common order.
 */
export const TELL_WAITER = `
local function tellWaiter(lock, member)
  local client = string.sub(member, 1, ${2 * CLIENT_ID_BYTES})
  redis.call(PUBLISH, lock .. '${CHANNEL_SUFFIX}:' .. client, member)
end`;

/** Redis' clock: microseconds and milliseconds since the epoch. */
export const CLOCK = `
local function clock()
  local time = redis.call('time')
  local us = tonumber(time[1]) * 1000000 + tonumber(time[2])
  return us, math.floor(us / 1000)
end`;

/**
 * KEYS: lock 1..n, fence 1..n. ARGV: token, ttl ms.
 * Returns the fencing token (> 0) on a grant, else -3 minus the PTTL of the first busy key
 * (always < 0): one integer, the cheapest reply to send and decode on every lock's path. With
 * several keys a refusal is {that integer, the busy key's index}: the waiter then listens for the
 * release of that key only (see the wake-ups in docs/protocol.md).
 */
const ACQUIRE = `${CLOCK}${CHECK_KEYS}${ISSUE_FENCE}
local n = #KEYS / 2
-- The counters are read first, as writing them could fail; SET NX and EXISTS cannot (a lock key
-- of another type is just busy).
local fence, stepped = nextFence(n + 1, 2 * n)
if not fence then return stepped end -- the error reply
-- A busy key of another type (a read-write lock's sorted set) is an error, not a wait: it is only
-- looked at on this path, so a free lock costs nothing more.
local function busy(key)
  if redis.call('type', key).ok ~= 'string' then return foreignKey(key, 'string') end
  return -3 - redis.call('pttl', key)
end
if n > 1 then
  for i = 1, n do
    if redis.call('exists', KEYS[i]) == 1 then
      local reply = busy(KEYS[i])
      -- With several keys, the index of the busy one: the waiter listens for its release only.
      if type(reply) == 'number' then return {reply, i} end
      return reply
    end
  end
end
for i = 1, n do
  if not redis.call('set', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then return busy(KEYS[i]) end
end
return storeFence(n + 1, 2 * n, fence, stepped)`;

/**
 * Fair acquire: granted only when every key is free and the caller is first in every queue (or
 * the queue is empty). Otherwise the caller joins (or refreshes its spot in) every queue, unless
 * its spot timeout is 0 (a single try). A caller a release handed the lock to is granted it here:
 * the key is given the caller's ttl and the fencing token issued at the hand-over comes back, so
 * the caller's lease counts from this attempt (sent before this script ran), never from a message.
 * KEYS: lock 1..n, fence 1..n, queue 1..n, timeouts 1..n.
 * ARGV: waiter id (its token), ttl ms, spot timeout ms.
 * Returns like ACQUIRE; the PTTL of a key not granted is -2 when it is free but another waiter is
 * first in its queue. A waiter queued for one key gets {that reply, who is just ahead of it}: the
 * waiter before it in the queue or, when it is first, the holder (the key's token; '' if none).
 * When that one releases the lock, the turn is this waiter's, which lets a release in the same
 * process pass the lock on without breaking the order. A waiter for several keys gets {that
 * reply, the index of the key in its way}, as ACQUIRE.
 */
const ACQUIRE_FAIR = `${CLOCK}${PURGE_STALE}${CHECK_KEYS}${ISSUE_FENCE}${TELL_WAITER}
local n = #KEYS / 4
local bad = checkKeys(1, n, 'string') or checkKeys(n + 1, 2 * n, 'fence')
  or checkKeys(2 * n + 1, 4 * n, 'zset')
if bad then return bad end
local token, spotTimeout = ARGV[1], tonumber(ARGV[3])
local handed = true
for i = 1, n do
  if redis.call('get', KEYS[i]) ~= token then handed = false break end
end
if handed then
  for i = 1, n do redis.call('pexpire', KEYS[i], ARGV[2]) end
  -- The token the hand-over issued; nobody else can have been granted the key since. A counter
  -- that expired meanwhile (a hand-over taken up after FENCE_RETENTION) issues a fresh one.
  return tonumber(redis.call('get', KEYS[n + 1])) or issueFence(n + 1, 2 * n)
end
local nowUs, nowMs = clock()
local blocked, blockedPttl = 0, 0
for i = 1, n do
  local queue = KEYS[2 * n + i]
  purgeStale(queue, KEYS[3 * n + i], nowMs)
  local pttl = redis.call('pttl', KEYS[i])
  local first = redis.call('zrange', queue, 0, 0)[1]
  if pttl == -2 and first and first ~= token then
    -- Free but promised to the first waiter, which may have missed its turn (its predecessor
    -- timed out of the queue, say): remind it.
    tellWaiter(KEYS[i], first)
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
  return issueFence(n + 1, 2 * n)
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
  if n == 1 then
    -- First in the queue, the one ahead is the holder: its token is the key's value.
    local rank = redis.call('zrank', KEYS[3], token)
    local ahead = rank > 0 and redis.call('zrange', KEYS[3], rank - 1, rank - 1)[1]
      or redis.call('get', KEYS[1]) or ''
    return {-3 - blockedPttl, ahead}
  end
end
if n > 1 then return {-3 - blockedPttl, blocked} end
return -3 - blockedPttl`;

/**
 * Renews a batch of locks, each on its own: lock j has n_j keys, KEYS holds them lock after lock,
 * and ARGV holds (token, new lease ms, n_j) for each lock in the same order. A lock's keys are all
 * reset to its lease only if its token holds every one of them; otherwise none is touched. One lock
 * alone is a batch of one (`handle.extend`). Returns one result per lock: 1 renewed, 0 refused
 * (some key is gone or holds another token), or, when a key holds a value that is not a string
 * (written by someone else), `FOREIGN_KEY_ERROR string <type found> <key>` as a status text:
 * that lock is left untouched and the others are still renewed. GET through pcall reads a foreign
 * type as an error table instead of failing the script, and PEXPIRE cannot fail, so no lock's
 * result depends on another's keys.
 */
const EXTEND = `
local results, last = {}, 0
for j = 1, #ARGV, 3 do
  local token, first = ARGV[j], last + 1
  last = last + tonumber(ARGV[j + 2])
  local result = 1
  for i = first, last do
    local value = redis.pcall('get', KEYS[i])
    if type(value) == 'table' then
      result = '${FOREIGN_KEY_ERROR} string ' .. redis.call('type', KEYS[i]).ok .. ' ' .. KEYS[i]
      break
    end
    if value ~= token then result = 0 break end
  end
  if result == 1 then
    for i = first, last do redis.call('pexpire', KEYS[i], ARGV[j + 1]) end
  end
  results[#results + 1] = result
end
return results`;

/**
 * Frees lock i (held by its caller) for the next owner. With nobody in its fair queue: deletes it
 * and wakes everyone on the key's channel. Otherwise hands it straight to the first waiter: the
 * key holds that waiter's token, for what is left of the waiter's own spot (its spot deadline
 * minus now: at most the waiter's own `fairQueueTimeout`, whoever releases), and the waiter is
 * told to look again; its next attempt finds the key holding its token and is granted it there
 * (ACQUIRE_FAIR). A waiter for several keys ('...:m') is only woken, as it needs all its keys at
 * once. KEYS: lock 1..n, queue 1..n, timeouts 1..n, fence 1..n.
 */
const HAND_OVER = `
local function handOver(i, n)
  local queue, timeouts = KEYS[n + i], KEYS[2 * n + i]
  if redis.call('exists', queue) == 1 then
    local _, nowMs = clock()
    purgeStale(queue, timeouts, nowMs)
    local first = redis.call('zrange', queue, 0, 0)[1]
    if first and string.sub(first, -2) ~= ':m' then
      -- purgeStale left only spots whose deadline is still ahead: the lease is at least 1 ms.
      local lease = tonumber(redis.call('zscore', timeouts, first)) - nowMs
      redis.call('set', KEYS[i], first, 'PX', lease)
      redis.call('zrem', queue, first)
      redis.call('zrem', timeouts, first)
      issueFence(3 * n + i, 3 * n + i)
      return tellWaiter(KEYS[i], first)
    end
    redis.call('del', KEYS[i])
    if first then return tellWaiter(KEYS[i], first) end
  else
    redis.call('del', KEYS[i])
  end
  redis.call(PUBLISH, KEYS[i] .. '${CHANNEL_SUFFIX}', '')
end`;

/**
 * KEYS: lock 1..n. ARGV: token. Deletes each key the token holds and wakes everyone waiting on
 * it. Returns how many keys were deleted. For stores without queues (Redlock's masters).
 */
const RELEASE_UNQUEUED = `${CHECK_KEYS}
local bad = checkKeys(1, #KEYS, 'string')
if bad then return bad end
local released = 0
for i = 1, #KEYS do
  if redis.call('get', KEYS[i]) == ARGV[1] then
    redis.call('del', KEYS[i])
    redis.call(PUBLISH, KEYS[i] .. '${CHANNEL_SUFFIX}', '')
    released = released + 1
  end
end
return released`;

/**
 * Releases every key the token holds, handing each to the first waiter queued for it (see
 * HAND_OVER for KEYS). ARGV[1]: the token; ARGV[2..]: places in the queues to drop first,
 * whether the token still holds the keys or not: those of waiters this lock was passed to in their process, which
 * are not waiting any more (it saves each of them a LEAVE_QUEUE). Returns how many keys it held.
 */
const RELEASE = `${CLOCK}${PURGE_STALE}${CHECK_KEYS}${CHECK_QUEUED}${ISSUE_FENCE}${TELL_WAITER}${HAND_OVER}
local n = #KEYS / 4
-- Places to drop (ARGV[2..]) touch every queue's spot deadlines.
local bad = checkQueued(n, #ARGV > 1)
if bad then return bad end
for j = 2, #ARGV do
  for i = 1, n do
    redis.call('zrem', KEYS[n + i], ARGV[j])
    redis.call('zrem', KEYS[2 * n + i], ARGV[j])
  end
end
local released = 0
for i = 1, n do
  if redis.call('get', KEYS[i]) == ARGV[1] then
    handOver(i, n)
    released = released + 1
  end
end
return released`;

/**
 * KEYS: fence 1..n. ARGV: a fencing token. Raises each counter below it to it: a lock over keys
 * of several Cluster slots has one token, the largest its slots issued, and every key's next
 * token must still be above it.
 */
const RAISE_FENCE = `${CHECK_KEYS}
local bad = checkKeys(1, #KEYS, 'fence')
if bad then return bad end
for i = 1, #KEYS do
  if fenceOf(KEYS[i]) < tonumber(ARGV[1]) then
    redis.call('set', KEYS[i], ARGV[1], 'PX', ${FENCE_RETENTION})
  end
end
return 1`;

/**
 * A fair waiter gives up: leaves every queue; passes on a key a release handed it meanwhile, and
 * where a key is free, reminds the new first waiter. KEYS as HAND_OVER; ARGV: the waiter's token.
 */
const LEAVE_QUEUE = `${CLOCK}${PURGE_STALE}${CHECK_KEYS}${CHECK_QUEUED}${ISSUE_FENCE}${TELL_WAITER}${HAND_OVER}
local n = #KEYS / 4
local bad = checkQueued(n, true)
if bad then return bad end
for i = 1, n do
  redis.call('zrem', KEYS[n + i], ARGV[1])
  redis.call('zrem', KEYS[2 * n + i], ARGV[1])
  if redis.call('get', KEYS[i]) == ARGV[1] then
    handOver(i, n)
  elseif redis.call('exists', KEYS[i]) == 0 then
    local first = redis.call('zrange', KEYS[n + i], 0, 0)[1]
    if first then tellWaiter(KEYS[i], first) end
  end
end
return 1`;

/**
 * An ACQUIRE reply as one integer: a refusal of several keys also names the busy key's index,
 * which a store without wake-ups (Redlock) has no use for.
 */
export const acquireReply = (reply: unknown): number =>
  Array.isArray(reply) ? (reply[0] as number) : (reply as number);

/** The PTTL a refused acquire reported (its reply r < 0 encodes it as -3 - PTTL). */
export const busyPttl = (reply: number): number => -3 - reply;

/**
 * A Lua script run by SHA (EVALSHA), loaded with EVAL on first use or after a server restart
 * (NOSCRIPT). Unlike `defineCommand`, it adds nothing to a client the user passed in.
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  run(redis: RedisClient, keys: readonly string[], args: (string | number)[]): Promise<unknown> {
    const n = keys.length;
    // One handler for both (no promise hop added to every call): a script's own error reply, or
    // a server that lost the script.
    return redis.evalsha(this.sha, n, ...keys, ...args).catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) explainForeignKey(err);
      return redis.eval(this.source, n, ...keys, ...args).catch(explainForeignKey);
    });
  }
}

/** Rethrows a script's FOREIGN_KEY_ERROR reply as a message a user can act on; others as they are. */
function explainForeignKey(err: unknown): never {
  const found = err instanceof Error && FOREIGN_KEY_REPLY.exec(err.message);
  if (!found) throw err;
  throw new Error(foreignKeyMessage(found[3], found[1], found[2]), { cause: err });
}

/**
 * The error for one lock of an EXTEND batch whose result is a FOREIGN_KEY_ERROR text.
 *
 * @example
 * foreignKeyError('LOCKKEY string hash lock:{a}').message; // 'Redis key "lock:{a}" should be ...'
 */
export function foreignKeyError(text: string): Error {
  const found = FOREIGN_KEY_REPLY.exec(text);
  return new Error(found ? foreignKeyMessage(found[3], found[1], found[2]) : text);
}

/** `FOREIGN_KEY_ERROR <kind> <type found> <key>`: the key is last, as it may contain spaces. */
const FOREIGN_KEY_REPLY = new RegExp(`^${FOREIGN_KEY_ERROR} (\\S+) (\\S+) ([\\s\\S]*)$`);

/** Every script, with the given publish command. */
function scriptSet(publish: 'publish' | 'spublish') {
  const script = (source: string) => new LuaScript(`local PUBLISH = '${publish}'${source}`);
  return {
    acquire: script(ACQUIRE),
    acquireFair: script(ACQUIRE_FAIR),
    extend: script(EXTEND),
    release: script(RELEASE),
    releaseUnqueued: script(RELEASE_UNQUEUED),
    leaveQueue: script(LEAVE_QUEUE),
    raiseFence: script(RAISE_FENCE),
  } as const;
}

/** The scripts for one Redis (or Sentinel): releases publish with PUBLISH. */
export const LockScripts = scriptSet('publish');

/** The scripts for Redis Cluster: releases publish with SPUBLISH, in the lock key's shard. */
export const ClusterLockScripts = scriptSet('spublish');

/** One of the two script sets. */
export type LockScriptSet = typeof LockScripts;
