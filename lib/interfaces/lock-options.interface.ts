import type { RetryStrategy } from './retry-strategy.interface.js';

/**
 * Per-lock options, accepted by every `LockService` method and by `@Lock`. Anything left out
 * falls back to the module options given to `RedisLockModule.forRoot`.
 *
 * @example
 * await lockService.run('report:daily', () => buildReport(), { ttl: 60_000, waitTimeout: 5_000 });
 */
export interface LockOptions {
  /** Lease in milliseconds; the key expires after this unless renewed. */
  ttl?: number;
  /** How long to wait for a busy lock, in milliseconds. `0` makes one attempt. */
  waitTimeout?: number;
  /** How to wait between attempts while the lock is busy. */
  retry?: RetryStrategy;
  /**
   * Renew the lease every `ttl / 3` until release (the watchdog). Defaults to `true` for `run()`
   * and `@Lock`, `false` for `acquire()` and `tryAcquire()`.
   */
  autoRenew?: boolean;
  /** Aborting this signal ends a wait; a lock taken by an attempt in flight is released. */
  signal?: AbortSignal;
  /**
   * `@Lock` only: what to do when the lock cannot be taken. `'throw'` (default) fails the call
   * (HTTP 423, `RpcException`, `WsException` or `LockNotAcquiredError`); `'skip'` returns
   * `undefined` without running the method, e.g. for a cron job that one instance should run.
   */
  onNotAcquired?: 'throw' | 'skip';
}
