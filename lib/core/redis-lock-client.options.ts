import type { Redis } from 'ioredis';
import type { RetryStrategy } from '../interfaces/retry-strategy.interface.js';

/**
 * Where the core reports what it cannot throw (a lock lost in the background). Nest's `Logger`
 * fits; outside Nest, any object with `warn`.
 *
 * @example
 * const locks = new RedisLockClient({ redis, logger: { warn: (message) => pino.warn(message) } });
 */
export interface LockLogger {
  warn(message: string): void;
}

/**
 * Options of `RedisLockClient`, the Nest-free core. `RedisLockModule` builds one from its own
 * options; use it directly outside Nest.
 *
 * @example
 * const client = new RedisLockClient({ redis: new Redis(), keyPrefix: 'app:lock:' });
 */
export interface RedisLockClientOptions {
  /** A connected (or connecting) ioredis client. The lock client never closes it. */
  redis: Redis;
  /** Prepended to every key. Default `'lock:'`. */
  keyPrefix?: string;
  /** Default lease in ms. Default 30000. */
  ttl?: number;
  /** Default wait for a busy lock in ms. Default 0 (one attempt). */
  waitTimeout?: number;
  /** Default retry strategy. Default exponential backoff with full jitter, 25 ms to 500 ms. */
  retry?: RetryStrategy;
  /** Receives warnings (lost locks, failed releases). Default: `process.emitWarning`. */
  logger?: LockLogger;
}
