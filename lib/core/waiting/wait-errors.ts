/* The errors a wait ends with when it did not get the lock: timed out, aborted, or Redis silent. */
import { LockNotAcquiredError, LockUnavailableError } from '../../errors/lock.errors.js';
import { NO_ANSWER_DURING_WAIT } from '../../redis-lock.messages.js';
import type { AcquireCall } from './acquire-call.interface.js';
import type { AcquireAttempts } from './acquire-attempts.js';
import { monotonicNow } from '../lease/monotonic-clock.js';

/**
 * The error of a wait that ended without the lock (its deadline passed, or it was aborted).
 *
 * @example
 * if (woke === 'aborted') throw notAcquired(call, true);
 */
export function notAcquired(
  { target, opts, started, leaseSeen }: AcquireCall,
  aborted: boolean,
): LockNotAcquiredError {
  const now = monotonicNow();
  const waited = opts.waitTimeout > 0 ? Math.round(now - started) : 0;
  const leaseLeft = leaseSeen && Math.max(0, Math.round(leaseSeen.ms - (now - leaseSeen.at)));
  return new LockNotAcquiredError(target.name, waited, aborted, leaseLeft);
}

/**
 * The error of a wait whose deadline passed (or whose retry strategy gave up): the lock was busy,
 * unless Redis answered none of its attempts (nor any of this client's since the wait started,
 * which covers waiters queued behind another waiter of this process): then Redis is unavailable.
 *
 * @example
 * if (remaining <= 0) throw waitTimedOut(call, attempts);
 */
export function waitTimedOut(
  call: AcquireCall,
  attempts: AcquireAttempts,
): LockNotAcquiredError | LockUnavailableError {
  if (call.answered || attempts.answeredSince(call.started)) return notAcquired(call, false);
  return new LockUnavailableError(call.target.name, NO_ANSWER_DURING_WAIT);
}
