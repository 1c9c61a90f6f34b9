import type { ExecutionContext } from '@nestjs/common';
import type { LockError } from '../errors/lock.errors.js';

/**
 * The module's `errorFactory`: what to throw in place of a lock error (`LockNotAcquiredError`,
 * `LockUnavailableError`, `InvalidLockKeyError`...) for the handler in `context`. Returning the
 * error unchanged lets it through as it is.
 *
 * @example
 * const errorFactory: LockErrorFactory = (error, context) =>
 *   error instanceof LockNotAcquiredError
 *     ? new ConflictException({ code: 'BUSY', resource: error.key })
 *     : error;
 */
export type LockErrorFactory = (error: LockError, context: ExecutionContext) => unknown;
