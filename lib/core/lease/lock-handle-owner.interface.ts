/* What a lock handle needs from the client that created it. */
import type { LockStore } from '../redis/lock-store.interface.js';
import type { LockLogger } from '../redis-lock-client.options.js';
import type { RedisLockHandle } from './redis-lock.handle.js';
import type { RenewalBatcher } from './renewal.batcher.js';

/**
 * What a handle needs from the client that created it (`RedisLockClient` implements it).
 *
 * @example
 * const handle = new RedisLockHandle(owner, target, token, fencingToken, ttl, sentAt, true);
 */
export interface LockHandleOwner {
  /** Where the lock lives. */
  readonly store: LockStore;
  /** Sends the watchdog's renewals, batched with those of the client's other locks. */
  readonly renewals: RenewalBatcher;
  readonly logger: LockLogger;
  /** Called once when the handle is released or lost, so the client stops tracking it. */
  ended(handle: RedisLockHandle): void;
  /**
   * Offered a lock that is being released, still held in Redis until `leaseEnds` (monotonic ms):
   * true when a waiter of this process took it over, so nothing is to be released in Redis.
   */
  passOn(handle: RedisLockHandle, leaseEnds: number): boolean;
}
