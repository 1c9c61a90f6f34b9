/* The retry strategies a waiter without wake-ups polls with: fixed delay, exponential backoff. */
import type { RetryStrategy } from '../../interfaces/retry-strategy.interface.js';

/**
 * Retries at a fixed interval until the wait times out.
 *
 * @param interval milliseconds between attempts
 * @example
 * RedisLockModule.forRoot({ redis: 'redis://localhost:6379', waitTimeout: 2_000, retry: fixedDelay(100) });
 */
export function fixedDelay(interval: number): RetryStrategy {
  assertDelay('interval', interval);
  return () => interval;
}

/**
 * Exponential backoff with full jitter: before attempt n+1 it sleeps a random time between 0 and
 * `min(cap, base * 2^(n-1))`. Spreads out waiters that collided, so they do not retry in lockstep.
 *
 * @example
 * await lockService.acquire('stock:7', { waitTimeout: 5_000, retry: exponentialBackoff({ base: 20, cap: 1_000 }) });
 */
export function exponentialBackoff(options: { base?: number; cap?: number } = {}): RetryStrategy {
  const base = options.base ?? 25;
  const cap = options.cap ?? 500;
  assertDelay('base', base);
  assertDelay('cap', cap);
  return (attempt) => Math.random() * Math.min(cap, base * 2 ** Math.min(attempt - 1, 30));
}

function assertDelay(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `Retry ${name} must be a finite number of milliseconds >= 0, got ${value}.`,
    );
  }
}
