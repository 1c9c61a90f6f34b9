/*
 * The public surface of nestjs-redis-lock. Nothing outside this list is public.
 */
export { RedisLockModule } from './redis-lock.module.js';
export { REDIS_LOCK_MODULE_OPTIONS } from './redis-lock.module-definition.js';
export { LOCK_METADATA, SEMAPHORE_METADATA } from './redis-lock.constants.js';
export { LockService } from './lock.service.js';
export { LockInterceptor } from './lock.interceptor.js';
export { Lock, type LockMetadata } from './decorators/lock.decorator.js';
export {
  Semaphore,
  type SemaphoreOptions,
  type SemaphoreMetadata,
} from './decorators/semaphore.decorator.js';
export * from './errors/index.js';
export * from './interfaces/index.js';
export { fixedDelay, exponentialBackoff } from './core/waiting/retry.strategies.js';
export { RedisLockClient, type LockScope, type LockKeys } from './core/redis-lock.client.js';
export { InMemoryLockStore } from './core/memory/in-memory-lock.store.js';
export type { RedisLockTestOptions } from './redis-lock.testing.js';
export type { LockRunner } from './locked-by-service.js';
export type {
  RedisLockClientOptions,
  LockLogger,
  ReplicaWait,
} from './core/redis-lock-client.options.js';
export type { RedisConnectionConfig, RedisClient } from './core/redis/redis-connection.js';
export type { RedlockOptions } from './core/redis/redlock.store.js';
export type { LockKey } from './core/keys/key-template.js';
export type { RedisLockTelemetryOptions, TelemetryKeys } from './telemetry/index.js';
export type {
  LockObserver,
  AcquireObservation,
  AcquireStarted,
  AcquireOutcome,
  HoldObservation,
  HoldOutcome,
} from './core/lock-observer.js';
export type { StoreProbe, NodeProbe, LockTopology } from './core/redis/store-probe.js';
