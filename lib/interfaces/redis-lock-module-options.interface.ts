import type { RedisConnectionConfig } from '../core/redis/redis-connection.js';
import type { ReplicaWait } from '../core/redis-lock-client.options.js';
import type { RedlockOptions } from '../core/redis/redlock.store.js';
import type { RetryStrategy } from './retry-strategy.interface.js';
import type { RedisLockTelemetryOptions } from '../telemetry/telemetry-options.interface.js';

/**
 * Options of `RedisLockModule.forRoot` (or what `forRootAsync`'s factory returns).
 *
 * @example
 * RedisLockModule.forRoot({ redis: 'redis://localhost:6379', ttl: 10_000, waitTimeout: 2_000 });
 */
export interface RedisLockModuleOptions {
  /**
   * A `redis://` URL, ioredis `RedisOptions` (with `sentinels` and `name` for Sentinel), or an
   * ioredis `Redis` or `Cluster` instance. A client passed in is used as is and never closed by
   * the module; one the module creates is closed on shutdown. Give this or `redlock`.
   */
  redis?: RedisConnectionConfig;
  /**
   * Instead of `redis`: Redlock on independent masters (3 or 5), each a URL, options or client.
   * A grant needs a majority. See "Choosing a topology" in the README for what holds there.
   */
  redlock?: RedlockModuleOptions;
  /** Prepended to every lock key in Redis. Default `'lock:'`. */
  keyPrefix?: string;
  /** Default lease in milliseconds, at most 2^31 - 1 (about 24.8 days). Default 30000. */
  ttl?: number;
  /**
   * Default wait for a busy lock in milliseconds, any length; `Infinity` waits until the lock is
   * granted or the call's signal aborts. Default 0: one attempt.
   */
  waitTimeout?: number;
  /**
   * How waiters pause between attempts when pub/sub wake-ups are off or unavailable. Default
   * `exponentialBackoff({ base: 25, cap: 500 })`.
   */
  retry?: RetryStrategy;
  /** Grant every busy lock in arrival order across processes (see `LockOptions.fair`). Default false. */
  fair?: boolean;
  /**
   * Wake waiters through Redis pub/sub on release (one extra connection, opened on the first
   * wait). Default true; false makes waiters poll with `retry`.
   */
  pubSub?: boolean;
  /**
   * Ms after which a waiter queued in Redis (fair waiters, and the first waiter of each process)
   * that stopped refreshing its place (it crashed) loses it. At most 2^31 - 1. Default 5000.
   */
  fairQueueTimeout?: number;
  /**
   * How many times in a row a released lock may go straight to another caller of this process
   * waiting for it, before it goes back to Redis where the other processes wait their turn
   * (0 to 15, 0 turns it off). Default 5. See `RedisLockClientOptions.maxLocalPasses`.
   */
  maxLocalPasses?: number;
  /**
   * Require this many replicas to acknowledge each grant within `timeout` ms (Redis `WAIT`), or
   * release it and fail with `LockUnavailableError` (HTTP 503). For Sentinel or replicated setups;
   * see the README for what it does and does not guarantee.
   */
  waitForReplicas?: ReplicaWait;
  /**
   * On shutdown (`app.close()`, or a signal with `enableShutdownHooks()`), how long locked work
   * still running (`@Lock` methods, `run()`, handles not yet released) may take to finish, in ms,
   * before its locks are released anyway. Its locks stay held and renewed meanwhile, so another
   * instance cannot start the same job; new locks are refused from the start of shutdown. 0
   * releases at once. An integer from 0 to 2^31-1. Default 10000.
   */
  drainTimeout?: number;
  /**
   * OpenTelemetry spans and metrics (see "Observability" in the README): recorded when
   * `@opentelemetry/api` is installed and an SDK registered, with keys shown as `keys` says.
   * `false` records nothing even then. Default `{ keys: 'full' }`.
   */
  telemetry?: RedisLockTelemetryOptions | false;
}

/**
 * `redlock` in the module options: the masters, and optionally the drift factor and the time one
 * master may take to answer.
 *
 * @example
 * RedisLockModule.forRoot({
 *   redlock: { clients: ['redis://a:6379', 'redis://b:6379', 'redis://c:6379'], nodeTimeout: 50 },
 * });
 */
export interface RedlockModuleOptions extends Omit<RedlockOptions, 'clients'> {
  clients: RedisConnectionConfig[];
}

/**
 * Implemented by a class given to `RedisLockModule.forRootAsync({ useClass })` or `useExisting`.
 *
 * @example
 * @Injectable()
 * export class LockConfig implements RedisLockOptionsFactory {
 *   constructor(private readonly config: ConfigService) {}
 *   createRedisLockOptions(): RedisLockModuleOptions {
 *     return { redis: this.config.getOrThrow('REDIS_URL') };
 *   }
 * }
 */
export interface RedisLockOptionsFactory {
  createRedisLockOptions(): RedisLockModuleOptions | Promise<RedisLockModuleOptions>;
}
