/* The contract of where locks live: one Redis or Cluster, Redlock masters, or memory. */
import type { LockTarget } from '../keys/lock-target.js';
import type { Renewal, RenewalOutcome } from './lock-renewals.js';

/**
 * Where locks live, as the lock client and its handles see it: one Redis (also through Sentinel)
 * or a Cluster (`RedisStore`), or a Redlock quorum of independent masters (`RedlockStore`).
 * Methods reject with the underlying error; the client turns it into `LockUnavailableError`.
 *
 * @example
 * const fence = await store.acquire(target, token, 30_000);
 * if (fence > 0) await store.release(target, token);
 */
export interface LockStore {
  /**
   * Fair queues and pub/sub wake-ups need every waiter to see one copy of a key: true on one
   * Redis or a Cluster, false on independent masters.
   */
  readonly supportsQueues: boolean;
  /**
   * The longest one call may take when every node answers in time (ms), e.g. two rounds of
   * per-node timeouts for Redlock; 0 when one Redis answers each call. Callers wait at least this.
   */
  readonly maxAnswerTime: number;
  /** The lease a grant of `ttl` ms can be trusted for, counted from when the attempt was sent. */
  lease(ttl: number): number;
  /**
   * One attempt on every key of `target`: the fencing token (> 0) on a grant, else -3 minus the
   * PTTL of a busy key. `spot` (fair mode only): queue for the lock meanwhile. `onBusy` learns,
   * before the reply settles, which lock key a refusal found busy, where the store can tell.
   */
  acquire(
    target: LockTarget,
    token: string,
    ttl: number,
    spot?: QueueSpot,
    onBusy?: BusyKeyListener,
  ): Promise<number>;
  /**
   * Renews each lock on its own (every key reset to its `ttl` if its token holds them all), in
   * one EXTEND call per node (per slot on a Cluster, per master with Redlock) for up to
   * RENEWAL_BATCH locks. Each call is bounded by `timeout` ms. Never rejects: one outcome per
   * renewal, in order, so a refusal or a failure marks only the locks it concerns.
   */
  extend(renewals: readonly Renewal[], timeout: number): Promise<RenewalOutcome[]>;
  /**
   * Frees every key `token` holds (for the first waiter queued, if any); true if it held all.
   * `passedTo`: the queue places of waiters the lock was passed to in their process, dropped.
   */
  release(target: LockTarget, token: string, passedTo?: readonly string[]): Promise<boolean>;
  /** A fair waiter gives up its places (and passes on a lock handed to it meanwhile). */
  leaveQueue(target: LockTarget, token: string): Promise<void>;
  /** Whether the lock key is held. */
  isLocked(lockKey: string): Promise<boolean>;
}

/** How a fair attempt queues for the lock when it does not get it. */
export interface QueueSpot {
  /** How long the place is kept without a refresh (ms; 0: a single try, no place). */
  readonly timeout: number;
  /** Learns who is just ahead in the queue of a single key (`undefined`: nobody, or not known). */
  readonly onQueued?: (ahead: string | undefined) => void;
}

/**
 * Told the lock key a refused attempt found busy: the one whose release the waiter listens for.
 *
 * @example
 * const onBusy: BusyKeyListener = (lock) => (busyLock = lock);
 */
export type BusyKeyListener = (lock: string) => void;
