/**
 * A semaphore permit held by this process, as returned by `LockService.acquirePermit` /
 * `tryAcquirePermit` and passed to the callback of `LockService.runWithPermit`. It has its own
 * lease (and watchdog, when renewed), as a lock does; it has no fencing token, since up to N
 * holders run at once.
 *
 * @example
 * const permit = await lockService.acquirePermit('payments-api', { permits: 5, autoRenew: true });
 * try {
 *   await callPaymentApi({ signal: permit.signal });
 * } finally {
 *   await permit.release();
 * }
 */
export interface PermitHandle {
  /** The semaphore's key as given, without the module's `keyPrefix`. */
  readonly key: string;
  /**
   * Aborted when the permit is lost (reason: `LockLostError`): its lease ran out or Redis lost it.
   * Also aborted when the permit is released. Pass it to work that must stop then.
   */
  readonly signal: AbortSignal;
  /**
   * Resets the permit's lease to `ttl` milliseconds (default: the ttl it was taken with).
   * @throws LockLostError when the permit is no longer held; a lost permit is never re-created.
   * @throws LockUnavailableError when Redis cannot be reached.
   * @throws RangeError when `ttl` is not a positive integer of at most 2^31 - 1.
   */
  extend(ttl?: number): Promise<void>;
  /**
   * Gives the permit back if this handle still holds it, waking the waiters. Resolves `false`
   * when it was no longer held. Safe to call more than once.
   * @throws LockUnavailableError when Redis cannot be reached (the permit then comes back when its
   * lease ends).
   */
  release(): Promise<boolean>;
  /** Local view: not released, not known to be lost, and the lease has not run out. */
  isHeld(): boolean;
}
