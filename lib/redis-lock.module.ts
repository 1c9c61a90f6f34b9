import { Logger, Module } from '@nestjs/common';
import { APP_INTERCEPTOR, DiscoveryModule } from '@nestjs/core';
import { checkDrainTimeout } from './core/lease/lock-drain.js';
import { RedisConnection } from './core/redis/redis-connection.js';
import type { RedisLockModuleOptions } from './interfaces/redis-lock-module-options.interface.js';
import { LockExplorer } from './lock.explorer.js';
import { LockInterceptor } from './lock.interceptor.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { LockService } from './lock.service.js';
import {
  REDIS_LOCK_CONNECTION,
  REDIS_LOCK_LOGGER_CONTEXT,
  REDIS_LOCK_OBSERVER,
} from './redis-lock.constants.js';
import { loadLockTelemetry } from './telemetry/load-telemetry.js';
import { connectionChoiceMessage } from './redis-lock.messages.js';
import {
  ConfigurableModuleClass,
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
    LockMetadataAccessor,
    LockExplorer,
    { provide: APP_INTERCEPTOR, useClass: LockInterceptor },
  ],
  exports: [LockService],
})
export class RedisLockModule extends ConfigurableModuleClass {}

/**
 * The connections the options ask for: one for `redis`, one per master for `redlock`.
 * @throws TypeError when the options give both or neither, before anything connects.
 * @throws RangeError on an invalid `drainTimeout`, before anything connects.
 */
function connectionsFor(options: RedisLockModuleOptions, logger: Logger): RedisConnection[] {
  const { redis, redlock } = options;
  if ((redis === undefined) === (redlock === undefined)) {
    throw new TypeError(connectionChoiceMessage(redis !== undefined));
  }
  if (options.drainTimeout !== undefined) checkDrainTimeout(options.drainTimeout);
  if (redlock) return redlock.clients.map((config) => RedisConnection.from(config, logger));
  return [RedisConnection.from(redis!, logger)];
}
