import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { RedisLockHealthIndicator } from '../lib/health/index.js';
import { SAMPLE_CONFIG, type SampleConfig } from './app.config.js';

/**
 * `GET /health` (terminus): 200 while the lock store answers, 503 when it does not, with its round
 * trip, topology and nodes, and the name of this instance. The demo script waits on it.
 */
@Controller('health')
export class HealthController {
  constructor(
    @Inject(SAMPLE_CONFIG) private readonly config: SampleConfig,
    private readonly health: HealthCheckService,
    private readonly lockHealth: RedisLockHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.lockHealth.isHealthy('redis-lock'),
      () => ({ instance: { status: 'up', name: this.config.instance } }),
    ]);
  }
}
