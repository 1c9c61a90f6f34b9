/*
 * `nestjs-redis-lock/health`: the terminus health indicator, apart from the main entry so that
 * `@nestjs/terminus` stays an optional peer dependency.
 */
export { RedisLockHealthIndicator } from './redis-lock.health.js';
export type { StoreProbe, NodeProbe, LockTopology } from '../core/redis/store-probe.js';
