import type { RetryStrategy } from './retry-strategy.interface.js';

/**
 * Per-lock options of `LockService.acquire` and `run` (and `RedisLockClient`'s), which honour
 * every one of them; `tryAcquire` takes `TryAcquireOptions` and `@Lock` takes
 * `LockDecoratorOptions`. Anything left out falls back to the module options given to
 * `RedisLockModule.forRoot`.
 *
 * @example
 * await lockService.run('report:daily', () => buildReport(), { ttl: 60_000, waitTimeout: 5_000 });
 */
export interface LockOptions {
  /**
   * Lease in milliseconds; the key expires after this unless renewed. At most 2^31 - 1 (about
   * 24.8 days), the longest timer Node keeps.
   */
  ttl?: number;
  /**
   * How long to wait for a busy lock, in milliseconds, any length. `0` makes one attempt;
   * `Infinity` waits until the lock is granted or `signal` aborts.
   */
  waitTimeout?: number;
  /**
   * How long to pause between attempts while the lock is busy, when pub/sub wake-ups are off or
   * unavailable. With wake-ups (the default) a waiter retries when the holder releases instead.
   */
  retry?: RetryStrategy;
  /**
   * Grant the lock in arrival order across all processes (a queue in Redis), instead of to
   * whichever waiter asks first after a release. Costs about one extra Redis call per waiter per
   * hand-over; use the same mode everywhere for a given key.
   */
  fair?: boolean;
  /**
   * Renew the lease every `ttl / 3` until release (the watchdog). Defaults to `true` for `run()`
   * and `@Lock`, `false` for `acquire()` and `tryAcquire()`.
   */
  autoRenew?: boolean;
  /** Aborting this signal ends a wait; a lock taken by an attempt in flight is released. */
  signal?: AbortSignal;
  /**
   * Takes the key as a read-write lock: `'read'` shares it with other readers, `'write'` excludes
   * everyone. A writer waiting keeps new readers out (with `fair: true`, those arriving after it),
   * so readers cannot starve writers. Inside a write lock the same call chain may take the read
   * lock (it joins the write lock); a write inside a read lock is refused (`LockModeError`).
   * Writers get fencing tokens rising across writers; readers the token of the last write. Without
   * `mode` the key is a plain lock; one key cannot be used both ways. One key only; not with
   * Redlock or the in-memory store.
   * @example
   * await locks.run('catalog', () => readCatalog(), { mode: 'read' });
   */
  mode?: 'read' | 'write';
}

/**
 * Options of `LockService.tryAcquire`: a single attempt, so no `waitTimeout` or `retry` (they
 * would be ignored).
 *
 * @example
 * const lock = await lockService.tryAcquire('import:csv', { ttl: 60_000, autoRenew: true });
 */
export type TryAcquireOptions = Omit<LockOptions, 'waitTimeout' | 'retry'>;

/**
 * Options of `@Lock`: every `LockOptions` field, and what to do when the lock cannot be taken.
 *
 * @example
 * @Lock('report:nightly', { ttl: 60_000, onNotAcquired: 'skip' })
 * async buildNightlyReport() { ... }
 */
export interface LockDecoratorOptions extends LockOptions {
  /**
   * What to do when the lock cannot be taken. `'throw'` (default) fails the call (HTTP 423,
   * `RpcException`, `WsException` or `LockNotAcquiredError`); `'skip'` returns `undefined`
   * without running the method, e.g. for a cron job that one instance should run.
   */
  onNotAcquired?: 'throw' | 'skip';
}
