/* Redis names of a read-write lock: a lock target plus the companions only its scripts use. */
import { InvalidLockKeyError } from '../../errors/lock.errors.js';
import { rwSingleKeyMessage } from '../../redis-lock.messages.js';
import { lockTarget, RW_SUFFIXES, type LockTarget } from './lock-target.js';

/** Readers made so far in this process: each reader's `id` is its own. */
let readers = 0;

/** Which side of a read-write lock a caller takes. */
export type LockMode = 'read' | 'write';

/**
 * A read-write lock on one key. `locks[0]` is the same lock key a plain lock on the key would use
 * (a sorted set here, a string there: the scripts refuse to use one as the other), so reentrant
 * calls find it under that name; `id` differs per mode, so readers and writers of one process wait
 * apart and a lock is never passed from one side to the other (nor, with `maxLocalPasses: 0`, at all).
 *
 * @example
 * const target = rwLockTarget('lock:', 'report:1', 'read', true);
 * target.rwKeys; // ['lock:{report:1}', 'lock:{report:1}:fence', 'lock:{report:1}:rw-writers', ...]
 */
export interface RwLockTarget extends LockTarget {
  readonly mode: LockMode;
  /** KEYS of every read-write script: holders, fence, writers waiting, fair queue, deadlines. */
  readonly rwKeys: readonly string[];
  /** Whether this call may wait (a waiting writer then keeps new readers out). */
  readonly waits: boolean;
}

/**
 * Builds the names of a read-write lock on `key` for one call.
 *
 * @example
 * rwLockTarget('lock:', 'report:1', 'write', false).id; // 'lock:{report:1} write'
 * @throws InvalidLockKeyError on a key lockTarget refuses, or an array of keys (a read-write lock
 * is on one key).
 */
export function rwLockTarget(
  prefix: string,
  key: string | readonly string[],
  mode: LockMode,
  waits: boolean,
): RwLockTarget {
  if (typeof key !== 'string') throw new InvalidLockKeyError(rwSingleKeyMessage(key));
  const target = lockTarget(prefix, key);
  const lock = target.locks[0];
  return {
    ...target,
    // A space, which no lock key ends with, then the side. Readers never wait for each other,
    // so each reader gets an id of its own: no reader queues in its process behind another.
    id: mode === 'write' ? `${lock} write` : `${lock} read ${++readers}`,
    mode,
    waits,
    rwKeys: [lock, target.fences[0], ...RW_SUFFIXES.map((suffix) => lock + suffix)],
  };
}

/** Whether a handle's target is a read-write lock's, and which side. */
export function modeOf(target: LockTarget): LockMode | undefined {
  return (target as Partial<RwLockTarget>).mode;
}
