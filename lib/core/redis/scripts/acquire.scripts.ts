/* The scripts that take a lock (ACQUIRE, ACQUIRE_FAIR, RAISE_FENCE) and the reading of replies. */
import { FENCE_RETENTION } from '../../../redis-lock.constants.js';
import { CHECK_KEYS, CLOCK, ISSUE_FENCE, PURGE_STALE, TELL_WAITER } from './shared.lua.js';

/**
 * KEYS: lock 1..n, fence 1..n. ARGV: token, ttl ms.
 * Returns the fencing token (> 0) on a grant, else -3 minus the PTTL of the first busy key
 * (always < 0): one integer, the cheapest reply to send and decode on every lock's path. With
 * several keys a refusal is {that integer, the busy key's index}: the waiter then listens for the
 * release of that key only (see the wake-ups in docs/protocol.md).
 */
export const ACQUIRE = `${CLOCK}${CHECK_KEYS}${ISSUE_FENCE}
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
export const ACQUIRE_FAIR = `${CLOCK}${PURGE_STALE}${CHECK_KEYS}${ISSUE_FENCE}${TELL_WAITER}
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
 * KEYS: fence 1..n. ARGV: a fencing token. Raises each counter below it to it: a lock over keys
 * of several Cluster slots has one token, the largest its slots issued, and every key's next
 * token must still be above it.
 */
export const RAISE_FENCE = `${CHECK_KEYS}
local bad = checkKeys(1, #KEYS, 'fence')
if bad then return bad end
for i = 1, #KEYS do
  if fenceOf(KEYS[i]) < tonumber(ARGV[1]) then
    redis.call('set', KEYS[i], ARGV[1], 'PX', ${FENCE_RETENTION})
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
