import { InvalidLockKeyError } from '../errors/lock.errors.js';
import { MAX_KEY_LENGTH } from '../redis-lock.constants.js';
import { invalidKeyMessage } from '../redis-lock.messages.js';

/** Appended to a lock key to name the channel its releases are published on. */
export const CHANNEL_SUFFIX = ':released';

/**
 * Everything one lock touches in Redis, for one key or several taken together. Every name of one
 * key shares the lock key's hash tag, so in Redis Cluster they all live in one slot and one script
 * can use them all.
 *
 * @example
 * const target = lockTarget('lock:', ['account:2', 'account:1']);
 * target.keys;  // ['account:1', 'account:2'] (sorted: the order every caller locks in)
 * target.locks; // ['lock:{account:1}', 'lock:{account:2}']
 */
export interface LockTarget {
  /** The keys as given, without duplicates, in the stable order they are locked in. */
  readonly keys: readonly string[];
  /** For messages: the key, or the keys joined with `', '`. */
  readonly name: string;
  /** Lock keys holding the owner's token (string, with the lease as TTL). */
  readonly locks: readonly string[];
  /** Fencing counters (string, the last token issued). */
  readonly fences: readonly string[];
  /** Fair-mode queues (sorted set: waiter → arrival, microseconds of Redis' clock). */
  readonly queues: readonly string[];
  /** Fair-mode spot deadlines (sorted set: waiter → ms of Redis' clock when its spot lapses). */
  readonly timeouts: readonly string[];
  /** Channels a release publishes on, to wake waiters. */
  readonly channels: readonly string[];
  /** Identifies the key set within one client (local queues, reentrancy). */
  readonly id: string;
  /** KEYS of the acquire script: locks, then fences. */
  readonly acquireKeys: readonly string[];
  /** KEYS of the fair release and leave-queue scripts: locks, queues, timeouts, fences. */
  readonly releaseKeys: readonly string[];
}

/**
 * Builds the Redis names of a lock on `key` (or on every key of an array, all or nothing).
 * @throws InvalidLockKeyError on an empty array, or a key that is not a non-empty string of at
 * most 1024 characters.
 */
export function lockTarget(prefix: string, key: string | readonly string[]): LockTarget {
  const given = typeof key === 'string' ? [key] : key;
  if (!Array.isArray(given) || given.length === 0) {
    throw new InvalidLockKeyError(invalidKeyMessage(key));
  }
  for (const k of given) {
    if (typeof k !== 'string' || k.length === 0 || k.length > MAX_KEY_LENGTH) {
      throw new InvalidLockKeyError(invalidKeyMessage(k));
    }
  }
  if (given.length === 1) {
    // The common case, built without intermediate arrays: it is on every lock's path.
    const lock = slotKey(prefix, given[0]);
    const queue = `${lock}:queue`;
    const timeouts = `${lock}:queue:timeouts`;
    const fence = `${lock}:fence`;
    return {
      keys: [given[0]],
      name: given[0],
      locks: [lock],
      fences: [fence],
      queues: [queue],
      timeouts: [timeouts],
      channels: [lock + CHANNEL_SUFFIX],
      id: lock,
      acquireKeys: [lock, fence],
      releaseKeys: [lock, queue, timeouts, fence],
    };
  }
  // One order for everyone: two callers locking {A, B} and {B, A} queue on the same first key.
  const keys = [...new Set(given)].sort();
  const locks = keys.map((k) => slotKey(prefix, k));
  const fences = locks.map((k) => `${k}:fence`);
  const queues = locks.map((k) => `${k}:queue`);
  const timeouts = locks.map((k) => `${k}:queue:timeouts`);
  return {
    keys,
    name: keys.join(', '),
    locks,
    fences,
    queues,
    timeouts,
    channels: locks.map((k) => k + CHANNEL_SUFFIX),
    id: locks.join('\n'),
    acquireKeys: [...locks, ...fences],
    releaseKeys: [...locks, ...queues, ...timeouts, ...fences],
  };
}

/**
 * The part of a multi-key target made of the keys at `indices` (in that order): what one Redis
 * Cluster slot holds of a lock spanning several slots.
 */
export function subTarget(target: LockTarget, indices: readonly number[]): LockTarget {
  const pick = <T>(list: readonly T[]) => indices.map((i) => list[i]);
  const locks = pick(target.locks);
  const fences = pick(target.fences);
  const queues = pick(target.queues);
  const timeouts = pick(target.timeouts);
  return {
    keys: pick(target.keys),
    name: pick(target.keys).join(', '),
    locks,
    fences,
    queues,
    timeouts,
    channels: pick(target.channels),
    id: locks.join('\n'),
    acquireKeys: [...locks, ...fences],
    releaseKeys: [...locks, ...queues, ...timeouts, ...fences],
  };
}

/**
 * The lock key in Redis: the prefixed key, wrapped in a hash tag (`lock:{order:1}`) unless it
 * already carries one (`lock:{tenant-7}:order:1` is kept), so the names derived from it by
 * appending a suffix hash to the same Cluster slot.
 */
function slotKey(prefix: string, key: string): string {
  const whole = prefix + key;
  return hasHashTag(whole) ? whole : `${prefix}{${key}}`;
}

/** Redis Cluster hashes only the part between the first `{` and the next `}`, if not empty. */
function hasHashTag(key: string): boolean {
  const open = key.indexOf('{');
  if (open < 0) return false;
  const close = key.indexOf('}', open + 1);
  return close > open + 1;
}
