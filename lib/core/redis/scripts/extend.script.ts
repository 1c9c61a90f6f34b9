/* The script that renews a batch of locks (EXTEND). */
import { FOREIGN_KEY_ERROR } from '../../../redis-lock.constants.js';

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
export const EXTEND = `
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
