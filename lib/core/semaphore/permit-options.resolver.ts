/** Checks a semaphore call's options: `permits`, then the lock's rules for the rest. */
import type { PermitOptions } from '../../interfaces/permit-options.interface.js';
import { invalidOptionMessage, permitsExpected } from '../../redis-lock.messages.js';
import { resolveLockOptions, type ResolvedLockOptions } from '../lock-options.resolver.js';

/** A semaphore call's options with every default filled in, and its N. */
export interface ResolvedPermitOptions extends ResolvedLockOptions {
  readonly permits: number;
}

/**
 * One semaphore call's options over the client's defaults (`fair` is always false: permits are
 * granted to whichever waiter asks first after a release).
 * @throws RangeError, TypeError on a missing or invalid `permits`, a `fair` option, or any option
 * the lock's calls refuse.
 * @example
 * resolvePermitOptions({ permits: 5, waitTimeout: 1_000 }, defaults).permits; // 5
 */
export function resolvePermitOptions(
  options: PermitOptions,
  defaults: ResolvedLockOptions,
  once = false,
): ResolvedPermitOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(invalidOptionMessage('permits', undefined, permitsExpected));
  }
  const { permits, ...lockOptions } = options;
  if (!Number.isSafeInteger(permits) || permits < 1) {
    throw new RangeError(invalidOptionMessage('permits', permits, permitsExpected));
  }
  const fair = (lockOptions as { fair?: unknown }).fair;
  if (fair !== undefined) {
    throw new TypeError(invalidOptionMessage('fair', fair, 'no value with a semaphore'));
  }
  return { ...resolveLockOptions(lockOptions, defaults, once), fair: false, permits };
}
