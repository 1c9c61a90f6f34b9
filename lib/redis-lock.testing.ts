/** `RedisLockModule.forTest()`: the lock module on an in-memory store, for unit tests. */
import type { DynamicModule, Type } from '@nestjs/common';
import { InMemoryLockStore } from './core/memory/in-memory-lock.store.js';
import type { RedisLockModuleOptions } from './interfaces/redis-lock-module-options.interface.js';
import { REDIS_LOCK_MODULE_OPTIONS } from './redis-lock.module-definition.js';

/**
 * Options of `RedisLockModule.forTest`: those of `forRoot` that do not name a Redis, plus the
 * store and `isGlobal`.
 *
 * @example
 * const store = new InMemoryLockStore(); // two apps given one store contend for its locks
 * RedisLockModule.forTest({ store, ttl: 5_000, waitTimeout: 200 });
 */
export interface RedisLockTestOptions extends Omit<
  RedisLockModuleOptions,
  'redis' | 'redlock' | 'memory' | 'waitForReplicas'
> {
  /** Where the locks live. Default: a new store for this module, shared with nobody. */
  store?: InMemoryLockStore;
  /** As in `forRoot`: the module is global unless this is false. Default true. */
  isGlobal?: boolean;
}

/**
 * The dynamic module `forTest` returns: `module` with its options given in place of `forRoot`'s,
 * and no connection to make (the module's connection factory returns none for `memory`).
 *
 * @example
 * static forTest(options: RedisLockTestOptions = {}) { return testingModule(RedisLockModule, options); }
 */
export function testingModule(module: Type, options: RedisLockTestOptions): DynamicModule {
  const { store = new InMemoryLockStore(), isGlobal = true, ...lockOptions } = options;
  const moduleOptions: RedisLockModuleOptions = { ...lockOptions, memory: store };
  return {
    module,
    global: isGlobal,
    providers: [{ provide: REDIS_LOCK_MODULE_OPTIONS, useValue: moduleOptions }],
  };
}
