import type { RedisConnectionConfig } from '../core/redis/redis-connection.js';
import type { RedisLockClientOptions } from '../core/redis-lock-client.options.js';
import type { RedlockOptions } from '../core/redis/redlock.store.js';
import type { LockErrorFactory } from './lock-error-factory.interface.js';
import type { RedisLockTelemetryOptions } from '../telemetry/telemetry-options.interface.js';

/**
 * Options of `RedisLockModule.forRoot` (or what `forRootAsync`'s factory returns): how to reach
 * Redis, and every default of `RedisLockClientOptions` (documented there, once), but `logger`:
 * the module logs through Nest's `Logger`.
 *
 * @example
 * RedisLockModule.forRoot({ redis: 'redis://localhost:6379', ttl: 10_000, waitTimeout: 2_000 });
 */
export interface RedisLockModuleOptions extends Omit<
  RedisLockClientOptions,
  'redis' | 'redlock' | 'logger' | 'observer'
> {
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
  /**
   * On shutdown (`app.close()`, or a signal with `enableShutdownHooks()`), how long locked work
   * still running (`@Lock` methods, `run()`, handles not yet released) may take to finish, in ms,
   * before its locks are released anyway. Its locks stay held and renewed meanwhile, so another
   * instance cannot start the same job; new locks are refused from the start of shutdown. 0
   * releases at once. An integer from 0 to 2^31-1. Default 10000.
   */
  drainTimeout?: number;
  /**
   * Shapes what a client is answered when a lock fails (HTTP, microservice or gateway): given
   * the lock error and the handler's context, returns what to throw instead (an `HttpException`,
   * an `RpcException`...). Used by `LockInterceptor`. Default: 423 / 503 / 400 as documented.
   */
  errorFactory?: LockErrorFactory;
  /**
   * Refuse to start (`app.init()` / `app.listen()` reject) unless Redis answers a PING within
   * `connectTimeout` ms (a majority of the masters with `redlock`). Default false: start anyway
   * and answer 503 until Redis is reachable.
   */
  failFast?: boolean;
  /** With `failFast`: how long startup waits for Redis to answer, in ms. Default 5000. */
  connectTimeout?: number;
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
