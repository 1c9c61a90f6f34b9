import { Logger, Module } from '@nestjs/common';
import { APP_INTERCEPTOR, DiscoveryModule } from '@nestjs/core';
import { RedisConnection } from './core/redis-connection.js';
import type { RedisLockModuleOptions } from './interfaces/redis-lock-module-options.interface.js';
import { LockExplorer } from './lock.explorer.js';
import { LockInterceptor } from './lock.interceptor.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { LockService } from './lock.service.js';
import { REDIS_LOCK_CONNECTION, REDIS_LOCK_LOGGER_CONTEXT } from './redis-lock.constants.js';
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
        RedisConnection.from(options.redis, new Logger(REDIS_LOCK_LOGGER_CONTEXT)),
    },
    LockService,
    LockMetadataAccessor,
    LockExplorer,
    { provide: APP_INTERCEPTOR, useClass: LockInterceptor },
  ],
  exports: [LockService],
})
export class RedisLockModule extends ConfigurableModuleClass {}
