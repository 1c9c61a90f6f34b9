// The @nestjs/terminus health indicator of the lock store: does it answer, how fast, node by node.
import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { LockService } from '../lock.service.js';
import { DEFAULT_HEALTH_TIMEOUT } from '../redis-lock.constants.js';

/**
 * A `@nestjs/terminus` health indicator for the Redis the locks live on: `up` when locks can be
 * taken (every node answers a `PING`; with Redlock, a majority of the masters), with the slowest
 * round trip in ms, the topology (`standalone`, `sentinel`, `cluster`, `redlock`) and each node's
 * status (each Cluster master, each Redlock master, the Sentinel master). Import it from
 * `nestjs-redis-lock/health` (so apps without terminus never load it) and provide it next to
 * `TerminusModule`.
 *
 * @example
 * @Controller('health')
 * export class HealthController {
 *   constructor(
 *     private readonly health: HealthCheckService,
 *     private readonly lockHealth: RedisLockHealthIndicator,
 *   ) {}
 *
 *   @Get()
 *   @HealthCheck()
 *   check() {
 *     return this.health.check([() => this.lockHealth.isHealthy('redis-lock')]);
 *   }
 * }
 * // in its module: imports: [TerminusModule], providers: [RedisLockHealthIndicator]
 */
@Injectable()
export class RedisLockHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly locks: LockService,
  ) {}

  /**
   * Pings every node, each given up on after `timeout` ms. Never throws: terminus turns a `down`
   * result into 503.
   * @example
   * await lockHealth.isHealthy('redis-lock', { timeout: 500 });
   * // { 'redis-lock': { status: 'up', topology: 'standalone', roundTripMs: 0.42, nodes: [...] } }
   */
  async isHealthy<const Key extends string>(
    key: Key,
    { timeout = DEFAULT_HEALTH_TIMEOUT }: { timeout?: number } = {},
  ): Promise<HealthIndicatorResult<Key>> {
    const indicator = this.indicators.check(key);
    const { up, ...details } = await this.locks.client.probe(timeout);
    return up ? indicator.up(details) : indicator.down(details);
  }
}
