/**
 * A lock held by this process, as returned by `LockService.acquire`/`tryAcquire` and passed to
 * the callback of `LockService.run`.
 *
 * @example
 * const lock = await lockService.acquire('invoice:42', { autoRenew: true });
 * try {
 *   await sendInvoice({ signal: lock.signal });
 * } finally {
 *   await lock.release();
 * }
 */
export interface LockHandle {
  /** The key as given, without the module's `keyPrefix`; for several keys, joined with `', '`. */
  readonly key: string;
  /** Every key this lock holds, in the order they were locked (sorted, without duplicates). */
  readonly keys: readonly string[];
  /**
   * Fencing token of this grant: on one Redis, Sentinel or a Cluster, strictly greater than the
   * token of every earlier grant of each of its keys, across all clients and processes. Pass it
   * with every write to the resource the lock protects, and have the resource refuse a write whose
   * token is lower than one it has seen: a holder that stalled past its lease is then harmless. A
   * bigint; `String(token)` for storage. With Redlock it is the largest token a majority of the
   * masters issued, which follows their clocks: no single counter orders it, and a master whose
   * clock runs ahead can make a later grant's token lower, so it is no strict guarantee there.
   */
  readonly fencingToken: bigint;
  /** Random token (128 bits from `crypto`) that proves ownership in Redis. Never log it. */
  readonly token: string;
  /**
   * Aborted when the lock is lost (reason: `LockLostError`): the key was deleted or taken, or the
   * lease ran out. Also aborted when the lock is released. Pass it to work that must stop then.
   */
  readonly signal: AbortSignal;
  /**
   * Resets the lease to `ttl` milliseconds (default: the ttl the lock was taken with).
   * @throws LockLostError when the lock is no longer held; a lost lock is never re-created.
   * @throws LockUnavailableError when Redis cannot be reached.
   * @throws RangeError when `ttl` is not a positive integer of at most 2^31 - 1 (about 24.8 days).
   */
  extend(ttl?: number): Promise<void>;
  /**
   * Lets the lock go: deletes its keys in Redis if this handle still owns them, or passes the lock
   * to another caller of this process waiting for the same keys (see `maxLocalPasses`).
   *
   * Resolves `true` when the lock was held until this release: not lost, its lease not run out,
   * and (when the release went to Redis) Redis still had this handle's token on every key. So
   * `true` means the work done under the lock ran while no one else held it, as far as this
   * process can know. `false` when it was no longer held: lost, taken, or its lease ran out first
   * (the work may have overlapped another holder's). A lock passed on answers the same way, from
   * what this process knows without asking Redis: should its key have been deleted in Redis
   * behind the process's back, the next holder learns it (its renewal is refused and its `signal`
   * aborts with `LockLostError`). Safe to call more than once: later calls resolve like the first.
   * @throws LockUnavailableError when the release had to go to Redis and Redis could not be
   * reached (the key then expires by its TTL).
   */
  release(): Promise<boolean>;
  /** Local view: not released, not known to be lost, and the lease has not run out. */
  isHeld(): boolean;
}
