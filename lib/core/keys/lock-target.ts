/**
 * Redis names of a lock: its lock key, fencing counter, fair queue and release channels.
 *
 * Why no key, prefix or template value can name another lock's keys:
 * - Lock key. When `prefix + key` has no valid Redis Cluster hash tag (a `{` followed later by a
 *   `}`, with something between), the lock key is `prefix + '{' + key + '}'` and ends with `}`.
 *   When it has one (in the key or in the prefix), it is `prefix + key + ':lock'`, ending with
 *   `:lock`, so the user's tag still decides the slot.
 * - Companions are the lock key plus `:fence`, `:queue`, `:timeouts` or `:semaphore` (a semaphore's
 *   holders), and, for a read-write lock, `:rw-writers`, `:rw-queue` or `:rw-timeouts` (`-` where
 *   the others have `:`, so none is another's lock key plus a suffix); channels are the lock key
 *   plus `:released` (and `:<client id>` for the waiters of one client), or its `:semaphore` key
 *   plus `:released`. Each ending differs from
 *   both endings of a lock key and from the others, so no lock key, whatever its prefix, is a
 *   companion of any lock, and two companions of one kind are the same only if their locks are.
 * - Within one prefix, distinct keys have distinct lock keys: strip the prefix and the braces of a
 *   plain name, or the prefix and `:lock` of a tagged one, and the key is back; a plain name and a
 *   tagged one differ in their last character.
 * - `id` (a lock's identity within one process) is its lock key for one key, and the JSON array of
 *   its lock keys for several: it starts with `[` and ends with `]`, which no lock key does, and
 *   distinct lists give distinct JSON.
 * Every name of one key extends its lock key, so in Redis Cluster they all hash to its slot and one
 * script can use them all, as long as the lock key holds a valid hash tag. (A plain name whose
 * first `{` is followed at once by `}`, as `lock:{}x}` for the key `}x`, holds none: Redis then
 * refuses the script's keys as spanning slots, and nothing is locked.)
 */
import { InvalidLockKeyError } from '../../errors/lock.errors.js';
import { MAX_KEY_LENGTH } from '../../redis-lock.constants.js';
import { invalidKeyMessage } from '../../redis-lock.messages.js';

/** Appended to a lock key to name the channel its releases are published on. */
export const CHANNEL_SUFFIX = ':released';

/** Appended to `prefix + key` when that already carries a hash tag (see the top of the file). */
const TAGGED_SUFFIX = ':lock';
const FENCE_SUFFIX = ':fence';
const QUEUE_SUFFIX = ':queue';
const TIMEOUTS_SUFFIX = ':timeouts';
/** A semaphore's holders (see `semaphoreTarget`). */
const SEMAPHORE_SUFFIX = ':semaphore';
/** A read-write lock's writers waiting, fair queue and spot deadlines (see rw-lock.scripts.ts). */
export const RW_SUFFIXES = [':rw-writers', ':rw-queue', ':rw-timeouts'] as const;

/**
 * Everything one lock touches in Redis, for one key or several taken together.
 *
 * @example
 * const target = lockTarget('lock:', ['account:2', 'account:1']);
 * target.keys;  // ['account:1', 'account:2'] (sorted: the order every caller locks in)
 * target.locks; // ['lock:{account:1}', 'lock:{account:2}']
 * lockTarget('lock:', '{tenant-7}:order:1').locks; // ['lock:{tenant-7}:order:1:lock']
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
  /**
   * Identifies the lock within one client (local queues, passes): the lock key for one key, the
   * JSON array of the lock keys for several, so no two locks share one.
   */
  readonly id: string;
  /** KEYS of the acquire script: locks, then fences. */
  readonly acquireKeys: readonly string[];
  /** KEYS of the fair release and leave-queue scripts: locks, queues, timeouts, fences. */
  readonly releaseKeys: readonly string[];
}

/**
 * Builds the Redis names of a lock on `key` (or on every key of an array, all or nothing).
 *
 * @example
 * lockTarget('lock:', 'order:1').locks;  // ['lock:{order:1}']
 * lockTarget('lock:', 'order:1').fences; // ['lock:{order:1}:fence']
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
    const lock = lockName(prefix, given[0]);
    const queue = lock + QUEUE_SUFFIX;
    const timeouts = lock + TIMEOUTS_SUFFIX;
    const fence = lock + FENCE_SUFFIX;
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
  // Duplicates are dropped by lock key, the name a script sees: one key twice in a script would
  // be written twice.
  const byLock = new Map<string, string>();
  for (const k of [...given].sort()) {
    const lock = lockName(prefix, k);
    if (!byLock.has(lock)) byLock.set(lock, k);
  }
  return targetOf([...byLock.values()], [...byLock.keys()]);
}

/**
 * The part of a multi-key target made of the keys at `indices` (in that order): what one Redis
 * Cluster slot holds of a lock spanning several slots.
 *
 * @example
 * const part = subTarget(lockTarget('lock:', ['a', 'b', 'c']), [0, 2]);
 * part.locks; // ['lock:{a}', 'lock:{c}']
 */
export function subTarget(target: LockTarget, indices: readonly number[]): LockTarget {
  const pick = <T>(list: readonly T[]) => indices.map((i) => list[i]);
  return targetOf(pick(target.keys), pick(target.locks));
}

/**
 * The lock key in Redis of `key` under `prefix` (see the top of the file for why these forms).
 *
 * @example
 * lockName('lock:', 'order:1');            // 'lock:{order:1}'
 * lockName('lock:', '{tenant-7}:order:1'); // 'lock:{tenant-7}:order:1:lock'
 * lockName('app:{eu}:', 'order:1');        // 'app:{eu}:order:1:lock'
 */
export function lockName(prefix: string, key: string): string {
  const whole = prefix + key;
  return hasHashTag(whole) ? whole + TAGGED_SUFFIX : `${prefix}{${key}}`;
}

/**
 * The Redis names of a semaphore on `key`: `locks[0]` is its sorted set of holders (token → expiry,
 * ms of Redis' clock), the lock key of `key` plus `:semaphore`, and `channels[0]` the channel a
 * permit's release is published on, that key plus `:released`. Both extend the lock key, so they
 * share its Cluster slot, and neither ends like a lock key or another companion (see the top of the
 * file): a semaphore and a lock on the same key are two independent objects. It has no fencing
 * counter nor queue (`fences`, `queues` and `timeouts` are empty).
 *
 * @example
 * semaphoreTarget('lock:', 'payments').locks;    // ['lock:{payments}:semaphore']
 * semaphoreTarget('lock:', 'payments').channels; // ['lock:{payments}:semaphore:released']
 * @throws InvalidLockKeyError on a key that is not a non-empty string of at most 1024 characters.
 */
export function semaphoreTarget(prefix: string, key: string): LockTarget {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new InvalidLockKeyError(invalidKeyMessage(key));
  }
  const holders = lockName(prefix, key) + SEMAPHORE_SUFFIX;
  return {
    keys: [key],
    name: key,
    locks: [holders],
    fences: [],
    queues: [],
    timeouts: [],
    channels: [holders + CHANNEL_SUFFIX],
    id: holders,
    acquireKeys: [holders],
    releaseKeys: [holders],
  };
}

/** A target over `keys`, whose lock keys are `locks` (same order, no duplicates). */
function targetOf(keys: readonly string[], locks: readonly string[]): LockTarget {
  const fences = locks.map((k) => k + FENCE_SUFFIX);
  const queues = locks.map((k) => k + QUEUE_SUFFIX);
  const timeouts = locks.map((k) => k + TIMEOUTS_SUFFIX);
  return {
    keys,
    name: keys.join(', '),
    locks,
    fences,
    queues,
    timeouts,
    channels: locks.map((k) => k + CHANNEL_SUFFIX),
    // One lock key is the same lock as the single-key target of it, so it has the same identity.
    id: locks.length === 1 ? locks[0] : JSON.stringify(locks),
    acquireKeys: [...locks, ...fences],
    releaseKeys: [...locks, ...queues, ...timeouts, ...fences],
  };
}

/** Redis Cluster hashes only the part between the first `{` and the next `}`, if not empty. */
function hasHashTag(key: string): boolean {
  const open = key.indexOf('{');
  if (open < 0) return false;
  const close = key.indexOf('}', open + 1);
  return close > open + 1;
}
