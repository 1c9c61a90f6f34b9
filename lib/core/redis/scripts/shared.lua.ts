/* The Lua functions several scripts share: strings a script's source starts with. */
import {
  CLIENT_ID_BYTES,
  FENCE_RETENTION,
  FENCE_STRIDE,
  FOREIGN_KEY_ERROR,
} from '../../../redis-lock.constants.js';
import { CHANNEL_SUFFIX } from '../../keys/lock-target.js';

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
