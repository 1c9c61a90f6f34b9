import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { RedisLockHealthIndicator } from '../lib/health/index.js';
import { exponentialBackoff, RedisLockModule } from '../lib/index.js';
import { SAMPLE_CONFIG, type SampleConfig } from './app.config.js';
import { SampleConfigModule } from './sample-config.module.js';
import { HealthController } from './health.controller.js';
import { OrdersModule } from './orders/orders.module.js';
import { ReportModule } from './report/report.module.js';

/**
 * The sample app: `POST /orders/:id/pay` and `GET /orders/:id` (orders/), a report job that runs
 * on one instance at a time (report/), and `GET /health` (terminus, with the lock store's health).
 * With OTEL_TRACE=tree each request prints its trace, lock spans included (telemetry/). Every instance shares one Redis.
 */
@Module({
  imports: [
    SampleConfigModule,
    // The options come from an injected provider, hence forRootAsync; forRoot takes a literal.
    RedisLockModule.forRootAsync({
      imports: [SampleConfigModule],
      inject: [SAMPLE_CONFIG],
      useFactory: (config: SampleConfig) => ({
        redis: config.redisUrl,
        keyPrefix: `${config.keyPrefix}lock:`,
        // Waiters poll quickly at first, then at most every 100 ms.
        retry: exponentialBackoff({ base: 25, cap: 100 }),
      }),
    }),
    OrdersModule,
    ReportModule,
    TerminusModule,
  ],
  controllers: [HealthController],
  providers: [RedisLockHealthIndicator],
})
export class AppModule {}
