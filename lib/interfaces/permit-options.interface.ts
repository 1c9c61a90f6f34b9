import type { LockOptions } from './lock-options.interface.js';

/**
 * Options of one semaphore call (`acquirePermit`, `tryAcquirePermit`, `runWithPermit`,
 * `@Semaphore`): `permits`, and the lock's options but `fair` (permits are granted to whichever
 * waiter asks first after a release). Anything left out falls back to the module options.
 *
 * @example
 * await lockService.runWithPermit('payments-api', () => pay(order), { permits: 5, waitTimeout: 2_000 });
 */
export interface PermitOptions extends Omit<LockOptions, 'fair'> {
  /**
   * N: at most this many holders of the key at once, a positive integer. Given on each call: a
   * new N applies to the permits granted from then on; holders are never revoked, so until enough
   * of them release, more than a lowered N may still hold.
   */
  permits: number;
}
