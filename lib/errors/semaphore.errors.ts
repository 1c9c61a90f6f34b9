import { permitNotAcquiredMessage } from '../redis-lock.messages.js';
import { LockNotAcquiredError } from './lock.errors.js';

/**
 * No permit of a semaphore could be taken: all N were held until the wait timed out (or it was
 * aborted). A `LockNotAcquiredError`, so it gets the same answers (HTTP 423 with `Retry-After`,
 * `onNotAcquired: 'skip'`) and the same `catch`.
 *
 * @example
 * try {
 *   await locks.acquirePermit('payments-api', { permits: 5, waitTimeout: 500 });
 * } catch (err) {
 *   if (err instanceof PermitNotAcquiredError) return 'too many payments in flight, try later';
 *   throw err;
 * }
 */
export class PermitNotAcquiredError extends LockNotAcquiredError {
  constructor(
    key: string,
    /** The number of permits the call asked within. */
    readonly permits: number,
    waitedMs: number,
    aborted = false,
    /** Ms until the first holder's lease ends, as Redis last reported it. */
    leaseLeftMs?: number,
  ) {
    super(key, waitedMs, aborted, leaseLeftMs);
    this.message = permitNotAcquiredMessage(key, permits, waitedMs, aborted);
  }
}
