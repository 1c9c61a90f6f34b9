/* The clock leases count on (monotonic), and the lease trusted for a ttl (drift margin off). */
import { LEASE_DRIFT_FACTOR, LEASE_DRIFT_MS } from '../../redis-lock.constants.js';

/** Monotonic milliseconds: lease arithmetic must not jump with the wall clock. */
export const monotonicNow = (): number => performance.now();

/**
 * How long a grant of `ttl` ms may be counted as held, from when its command was sent: less than
 * the ttl by the clock drift allowed (`driftFactor` of it, plus LEASE_DRIFT_MS). Every lease the client keeps (grants, renewals, passes) is one of these, so the
 * client stops counting a lock as held before Redis expires it.
 *
 * @example
 * const expiresAt = sentAt + trustedLease(30_000); // sentAt + 29_698
 */
export function trustedLease(ttl: number, driftFactor = LEASE_DRIFT_FACTOR): number {
  return ttl - Math.floor(ttl * driftFactor) - LEASE_DRIFT_MS;
}
