import { Logger, Module, type DynamicModule } from '@nestjs/common';
import { APP_INTERCEPTOR, DiscoveryModule } from '@nestjs/core';
import { checkDrainTimeout } from './core/lease/lock-drain.js';
import { RedisConnection } from './core/redis/redis-connection.js';
import type { RedisLockModuleOptions } from './interfaces/redis-lock-module-options.interface.js';
import { LockExplorer } from './lock.explorer.js';
import { LockInterceptor } from './lock.interceptor.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { LockService } from './lock.service.js';
import {
  LOCK_SERVICE_TOKEN,
  REDIS_LOCK_CONNECTION,
  REDIS_LOCK_LOGGER_CONTEXT,
  REDIS_LOCK_OBSERVER,
} from './redis-lock.constants.js';
import {
  connectionChoiceMessage,
  MEMORY_WITH_REDIS_MESSAGE,
  missingModuleOptionsMessage,
} from './redis-lock.messages.js';
import { checkConnectTimeout, RedisStartupCheck } from './redis-startup.check.js';
import { testingModule, type RedisLockTestOptions } from './redis-lock.testing.js';
import { loadLockTelemetry } from './telemetry/load-telemetry.js';
import {
  ConfigurableModuleClass,
  OPTIONS_TYPE,
  REDIS_LOCK_MODULE_OPTIONS,
} from './redis-lock.module-definition.js';

/**
 * Distributed locks on Redis for Nest: provides `LockService`, makes `@Lock` work on controllers
 * and providers, and answers busy locks with 423 through a global `LockInterceptor`. Global by
 * default (`isGlobal: true`).
 *
 * @example
 * @Module({
 *   imports: [
 *     RedisLockModule.forRoot({ redis: 'redis://localhost:6379', ttl: 15_000 }),
 *     // or, from configuration:
 *     // RedisLockModule.forRootAsync({
 *     //   inject: [ConfigService],
 *     //   useFactory: (config: ConfigService) => ({ redis: config.getOrThrow('REDIS_URL') }),
 *     // }),
 *   ],
 * })
 * export class AppModule {}
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    {
      provide: REDIS_LOCK_CONNECTION,
      inject: [REDIS_LOCK_MODULE_OPTIONS],
      useFactory: (options: RedisLockModuleOptions) =>
        connectionsFor(options, new Logger(REDIS_LOCK_LOGGER_CONTEXT)),
    },
    {
      provide: REDIS_LOCK_OBSERVER,
      inject: [REDIS_LOCK_MODULE_OPTIONS],
      useFactory: (options: RedisLockModuleOptions) => loadLockTelemetry(options.telemetry),
    },
    LockService,
    { provide: LOCK_SERVICE_TOKEN, useExisting: LockService },
    LockMetadataAccessor,
    LockExplorer,
    { provide: APP_INTERCEPTOR, useClass: LockInterceptor },
    RedisStartupCheck,
  ],
  // The options too: a LockInterceptor bound by @Lock in another module reads `errorFactory`.
  exports: [LockService, LOCK_SERVICE_TOKEN, REDIS_LOCK_MODULE_OPTIONS],
})
export class RedisLockModule extends ConfigurableModuleClass {
  /**
   * The module, locking on the Redis the options name.
   * @throws TypeError without options (plain JavaScript's `forRoot()`): there is no default Redis.
   * @example
   * RedisLockModule.forRoot({ redis: 'redis://localhost:6379' });
   */
  static override forRoot(options: typeof OPTIONS_TYPE): DynamicModule {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(missingModuleOptionsMessage(options));
    }
    return super.forRoot(options);
  }

  /**
   * The module for unit tests: the same `LockService`, `@Lock` and interceptor, with locks in
   * this process's memory instead of Redis (see `RedisLockTestOptions`). Same semantics as one
   * Redis: leases, waits and wake-ups, fair queues, fencing tokens, reentrancy, skip, multi-key.
   * @example
   * const moduleRef = await Test.createTestingModule({
   *   imports: [RedisLockModule.forTest({ waitTimeout: 100 })],
   *   providers: [ReportService],
   * }).compile();
   */
  static forTest(options: RedisLockTestOptions = {}): DynamicModule {
    return testingModule(RedisLockModule, options);
  }
}

/**
 * The connections the options ask for: one for `redis`, one per master for `redlock`.
 * @throws TypeError when there are no options (`forRoot()` from JavaScript, a `forRootAsync`
 * factory that returns nothing), or they give both or neither, before anything connects.
 * @throws RangeError on an invalid `drainTimeout` or `connectTimeout`, before anything connects.
 */
function connectionsFor(options: RedisLockModuleOptions, logger: Logger): RedisConnection[] {
  // No default Redis: a lock service that quietly points at localhost in production is worse
  // than an app that does not start.
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(missingModuleOptionsMessage(options));
  }
  const { redis, redlock, memory } = options;
  if (memory !== undefined) {
    if (redis !== undefined || redlock !== undefined)
      throw new TypeError(MEMORY_WITH_REDIS_MESSAGE);
    if (options.drainTimeout !== undefined) checkDrainTimeout(options.drainTimeout);
    return [];
  }
  if ((redis === undefined) === (redlock === undefined)) {
    throw new TypeError(connectionChoiceMessage(redis !== undefined));
  }
  if (options.drainTimeout !== undefined) checkDrainTimeout(options.drainTimeout);
  checkConnectTimeout(options.connectTimeout);
  if (redlock) return redlock.clients.map((config) => RedisConnection.from(config, logger));
  return [RedisConnection.from(redis!, logger)];
}
