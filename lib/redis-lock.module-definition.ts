import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RedisLockModuleOptions } from './interfaces/redis-lock-module-options.interface.js';

/*
 * forRoot/forRootAsync come from Nest's builder, as in @nestjs/cache-manager. `isGlobal` is an
 * extra, not an option: it shapes the module, not the locks, and defaults to true so @Lock works
 * in every feature module without importing RedisLockModule again. A `useClass`/`useExisting`
 * options provider implements `RedisLockOptionsFactory`.
 *
 * `REDIS_LOCK_MODULE_OPTIONS` is public: inject it to read the options the module was given.
 *   constructor(@Inject(REDIS_LOCK_MODULE_OPTIONS) options: RedisLockModuleOptions) {}
 */
export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: REDIS_LOCK_MODULE_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RedisLockModuleOptions>({ moduleName: 'RedisLock' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createRedisLockOptions')
  .setExtras({ isGlobal: true }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
