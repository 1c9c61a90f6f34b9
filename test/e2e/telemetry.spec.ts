/**
 * RedisLockModule's OpenTelemetry wiring: with an SDK registered, `@Lock` records its spans under
 * the caller's span, keys shown as `telemetry.keys` says; `telemetry: false` records nothing.
 */
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { trace } from '@opentelemetry/api';
import { Lock, RedisLockModule, type RedisLockModuleOptions } from '../../lib/index.js';
import { registerOtelSdk, type OtelSdk } from '../support/otel-sdk.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';

@Injectable()
class Jobs {
  @Lock('job:{{id}}')
  async run(id: string): Promise<string> {
    return `ran ${id}`;
  }
}

async function createApp(options: RedisLockModuleOptions): Promise<INestApplicationContext> {
  @Module({ imports: [RedisLockModule.forRoot(options)], providers: [Jobs] })
  class AppModule {}
  return NestFactory.createApplicationContext(AppModule, { logger: false });
}

describe('RedisLockModule telemetry', () => {
  let redis: RedisServer;
  let sdk: OtelSdk;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => {
    redis = await startRedis();
  });
  beforeEach(() => {
    sdk = registerOtelSdk();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await sdk.shutdown();
  });
  afterAll(() => stopAllRedis());

  it('records @Lock spans under the caller span, with the keys redacted as asked', async () => {
    app = await createApp({ redis: redis.url, telemetry: { keys: 'redacted' } });
    const jobs = app.get(Jobs);
    const caller = await trace.getTracer('test').startActiveSpan('caller', async (span) => {
      expect(await jobs.run('42')).toBe('ran 42');
      span.end();
      return span.spanContext().spanId;
    });

    const spans = sdk.spans().filter((span) => span.name.startsWith('lock.'));
    expect(spans.map((span) => span.name).sort()).toEqual(['lock.acquire', 'lock.hold']);
    for (const span of spans) {
      expect(span.attributes['lock.key']).toBe('job:*');
      expect(span.parentSpanContext?.spanId).toBe(caller);
    }
  });

  it('records nothing with telemetry: false', async () => {
    app = await createApp({ redis: redis.url, telemetry: false });
    await app.get(Jobs).run('7');
    expect(sdk.spans()).toHaveLength(0);
  });
});
