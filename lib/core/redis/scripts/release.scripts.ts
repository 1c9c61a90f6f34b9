/* The scripts that let a lock go or leave its queue, handing it to the next fair waiter. */
import { CHANNEL_SUFFIX } from '../../keys/lock-target.js';
import { CHECK_KEYS, CLOCK, ISSUE_FENCE, PURGE_STALE, TELL_WAITER } from './shared.lua.js';

/**
 * Checks, before the first write, what RELEASE or LEAVE_QUEUE may touch of each key i (KEYS as
 * HAND_OVER): its lock key and queue and, where the queue exists or `always`, its spot deadlines
 * and fencing counter. Without a queue a release reads neither (it deletes the lock and
 * publishes), and the common release is spared two reads. Returns nil or CHECK_KEYS' error reply.
 */
export const CHECK_QUEUED = `
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
 * Frees lock i (held by its caller) for the next owner. With nobody in its fair queue: deletes it
 * and wakes everyone on the key's channel. Otherwise hands it straight to the first waiter: the
 * key holds that waiter's token, for what is left of the waiter's own spot (its spot deadline
 * minus now: at most the waiter's own `fairQueueTimeout`, whoever releases), and the waiter is
 * told to look again; its next attempt finds the key holding its token and is granted it there
 * (ACQUIRE_FAIR). A waiter for several keys ('...:m') is only woken, as it needs all its keys at
 * once. KEYS: lock 1..n, queue 1..n, timeouts 1..n, fence 1..n.
 */
export const HAND_OVER = `
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
export const RELEASE_UNQUEUED = `${CHECK_KEYS}
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
export const RELEASE = `${CLOCK}${PURGE_STALE}${CHECK_KEYS}${CHECK_QUEUED}${ISSUE_FENCE}${TELL_WAITER}${HAND_OVER}
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
 * A fair waiter gives up: leaves every queue; passes on a key a release handed it meanwhile, and
 * where a key is free, reminds the new first waiter. KEYS as HAND_OVER; ARGV: the waiter's token.
 */
export const LEAVE_QUEUE = `${CLOCK}${PURGE_STALE}${CHECK_KEYS}${CHECK_QUEUED}${ISSUE_FENCE}${TELL_WAITER}${HAND_OVER}
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
