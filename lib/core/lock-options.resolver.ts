/* A call's lock options over the client's defaults, checked once into resolved values. */
import type { LockOptions } from '../interfaces/lock-options.interface.js';
import type { RetryStrategy } from '../interfaces/retry-strategy.interface.js';
import {
  DEFAULT_RETRY_BASE,
  DEFAULT_RETRY_CAP,
  DEFAULT_TTL,
  DEFAULT_WAIT_TIMEOUT,
  MAX_TIMER_DELAY,
} from '../redis-lock.constants.js';
import { invalidOptionMessage, timerDelayExpected } from '../redis-lock.messages.js';
import { isTimerDelay } from './lease/long-timeout.js';
import type { RedisLockClientOptions } from './redis-lock-client.options.js';
import { exponentialBackoff } from './waiting/retry.strategies.js';

/** Options of one lock call with every default filled in and checked. */
export interface ResolvedLockOptions {
  ttl: number;
  waitTimeout: number;
  retry: RetryStrategy;
  autoRenew: boolean;
  fair: boolean;
  signal?: AbortSignal;
  /** A read-write lock's side; undefined for a plain lock. */
  mode?: 'read' | 'write';
}

/**
 * A client's defaults, checked once at construction so a bad module option fails at startup.
 * @throws RangeError, TypeError on an invalid ttl (above 2^31 - 1 ms included), waitTimeout or
 * retry.
 */
export function resolveClientDefaults(options: RedisLockClientOptions): ResolvedLockOptions {
  return resolveLockOptions(
    {
      ttl: options.ttl ?? DEFAULT_TTL,
      waitTimeout: options.waitTimeout ?? DEFAULT_WAIT_TIMEOUT,
      retry:
        options.retry ?? exponentialBackoff({ base: DEFAULT_RETRY_BASE, cap: DEFAULT_RETRY_CAP }),
      fair: options.fair ?? false,
    },
    {
      ttl: DEFAULT_TTL,
      waitTimeout: DEFAULT_WAIT_TIMEOUT,
      retry: () => null,
      autoRenew: false,
      fair: false,
    },
  );
}

/**
 * One call's options over the client's defaults.
 * @throws RangeError, TypeError on an invalid ttl (above 2^31 - 1 ms included), waitTimeout,
 * retry, autoRenew or fair.
 */
export function resolveLockOptions(
  options: LockOptions,
  defaults: ResolvedLockOptions,
  /** A single attempt (`tryAcquire`): `waitTimeout` is 0 whatever the options say. */
  once = false,
): ResolvedLockOptions {
  const ttl = options.ttl ?? defaults.ttl;
  const waitTimeout = once ? 0 : (options.waitTimeout ?? defaults.waitTimeout);
  const retry = options.retry ?? defaults.retry;
  if (!isTimerDelay(ttl)) {
    throw new RangeError(invalidOptionMessage('ttl', ttl, timerDelayExpected(MAX_TIMER_DELAY)));
  }
  // Any length: waits re-arm their timers (setLongTimeout); Infinity waits until granted or aborted.
  if (typeof waitTimeout !== 'number' || Number.isNaN(waitTimeout) || waitTimeout < 0) {
    throw new RangeError(
      invalidOptionMessage(
        'waitTimeout',
        waitTimeout,
        'a number of milliseconds >= 0, or Infinity',
      ),
    );
  }
  if (typeof retry !== 'function') {
    throw new TypeError(invalidOptionMessage('retry', retry, 'a RetryStrategy function'));
  }
  for (const flag of ['autoRenew', 'fair'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') {
      throw new TypeError(invalidOptionMessage(flag, options[flag], 'true or false'));
    }
  }
  const { mode } = options;
  if (mode !== undefined && mode !== 'read' && mode !== 'write') {
    throw new TypeError(invalidOptionMessage('mode', mode, "'read' or 'write'"));
  }
  return {
    mode,
    ttl,
    waitTimeout,
    retry,
    autoRenew: options.autoRenew ?? defaults.autoRenew,
    fair: options.fair ?? defaults.fair,
    signal: options.signal,
  };
}
