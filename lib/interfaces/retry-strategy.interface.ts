/**
 * Decides how long a waiter sleeps before its next attempt on a busy lock.
 *
 * Called with the number of attempts made so far (1 after the first failed attempt). Return the
 * delay in milliseconds before the next attempt, or `null` to stop waiting (the wait then fails
 * with `LockNotAcquiredError`). The wait also ends at `waitTimeout` or when its `AbortSignal`
 * aborts, whichever comes first, so a strategy need not track time itself.
 *
 * Use the helpers `fixedDelay()` and `exponentialBackoff()` or write your own.
 *
 * @example
 * // three quick retries, then give up
 * const threeTimes: RetryStrategy = (attempt) => (attempt <= 3 ? 50 : null);
 */
export type RetryStrategy = (attempt: number) => number | null;
