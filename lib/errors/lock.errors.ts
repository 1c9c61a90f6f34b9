import { lockLostMessage, notAcquiredMessage, unavailableMessage } from '../redis-lock.messages.js';
import { brandErrorClass, isBrandedInstance, recordBrands } from './error-brand.js';

/**
 * Base class of every error this library throws, so one `catch` or exception filter can handle
 * them all.
 *
 * @example
 * try {
 *   await lockService.run('job', work);
 * } catch (err) {
 *   if (err instanceof LockError) logger.warn(err.message);
 *   else throw err;
 * }
 */
export class LockError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    recordBrands(this, new.target);
  }

  /**
   * Also true for an error of the package's other build (ES module or CommonJS) loaded in the
   * same process, so `instanceof` and `@Catch(...)` work whichever copy threw it.
   */
  static override [Symbol.hasInstance]<T extends abstract new (...args: never) => unknown>(
    this: T,
    value: unknown,
  ): value is InstanceType<T> {
    return isBrandedInstance(this, value);
  }
}

/**
 * The lock is held by someone else and could not be taken within `waitTimeout`, or the wait was
 * aborted through its signal. `@Lock` turns it into HTTP 423 Locked on controllers.
 *
 * @example
 * try {
 *   await lockService.acquire('order:1', { waitTimeout: 500 });
 * } catch (err) {
 *   if (err instanceof LockNotAcquiredError) return 'busy, try later';
 *   throw err;
 * }
 */
export class LockNotAcquiredError extends LockError {
  constructor(
    /** The key as given, without prefix. */
    readonly key: string,
    /** Milliseconds spent waiting before giving up. */
    readonly waitedMs: number,
    /** Whether the wait ended because its `AbortSignal` aborted. */
    readonly aborted = false,
    /**
     * The holder's lease left when this call gave up, in ms, as Redis last reported it (the
     * `Retry-After` of a 423); `undefined` when not known (a key without expiry, a turn in a
     * queue). The holder may renew it, so it is a hint, not a promise.
     */
    readonly leaseLeftMs?: number,
  ) {
    super(notAcquiredMessage(key, waitedMs, aborted));
  }
}

/**
 * A lock this process held is gone: the key was deleted or taken by another owner, or its lease
 * ran out. Thrown by `LockHandle.extend` and used as the reason of the handle's `signal`.
 *
 * @example
 * lock.signal.addEventListener('abort', () => {
 *   if (lock.signal.reason instanceof LockLostError) stopWriting();
 * });
 */
export class LockLostError extends LockError {
  constructor(
    readonly key: string,
    why: string,
  ) {
    super(lockLostMessage(key, why));
  }
}

/**
 * Redis could not be reached (or did not answer in time), so nothing was locked and the guarded
 * work did not run. `@Lock` turns it into HTTP 503 on controllers.
 *
 * @example
 * try {
 *   await lockService.run('sync', work);
 * } catch (err) {
 *   if (err instanceof LockUnavailableError) scheduleRetry();
 * }
 */
export class LockUnavailableError extends LockError {
  constructor(
    readonly key: string,
    cause: unknown,
  ) {
    super(unavailableMessage(key, causeText(cause)), { cause: withoutCommand(cause) });
  }
}

/**
 * A lock key could not be built at call time (a placeholder resolved to `undefined`, `null`, an
 * object or an over-long value), or a key or option passed to `LockService` is invalid. Nothing
 * was locked and the method did not run. `@Lock` turns it into HTTP 400 on controllers.
 *
 * @example
 * await expect(orders.pay(undefined)).rejects.toBeInstanceOf(InvalidLockKeyError);
 */
export class InvalidLockKeyError extends LockError {}

/**
 * A `@Lock` key template is malformed or names a parameter the method does not have, or an option
 * of `@Lock` is invalid or unknown. Thrown when the decorated class is defined, i.e. when its file is imported, so the app never starts with it.
 *
 * @example
 * // throws: placeholder {{orderId}} names no parameter of the method. Available: id
 * class Orders { @Lock('order:{{orderId}}') pay(id: string) {} }
 */
export class LockTemplateError extends LockError {}

// One brand per class, shared by both builds (see error-brand.ts). Written out rather than taken
// from `.name`, which a minifier may change differently in each copy.
brandErrorClass(LockError, 'LockError');
brandErrorClass(LockNotAcquiredError, 'LockNotAcquiredError');
brandErrorClass(LockLostError, 'LockLostError');
brandErrorClass(LockUnavailableError, 'LockUnavailableError');
brandErrorClass(InvalidLockKeyError, 'InvalidLockKeyError');
brandErrorClass(LockTemplateError, 'LockTemplateError');

function causeText(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * The cause as kept on the error: ioredis puts the failed command, with its arguments (a lock's
 * token among them), on the errors it rejects with, and logging an error prints its cause. Only
 * the name, message and code are kept; tokens never reach a log.
 */
function withoutCommand(cause: unknown): unknown {
  if (!(cause instanceof Error)) return cause;
  const kept = new Error(cause.message);
  kept.name = cause.name;
  const { code } = cause as { code?: unknown };
  if (code !== undefined) Object.assign(kept, { code });
  return kept;
}
