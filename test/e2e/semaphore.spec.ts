/**
 * `@Semaphore` in Nest apps: on a controller (HTTP 423 when all permits are held), on a provider
 * (`onNotAcquired: 'skip'`), checked where the class is defined, refused at startup with Redlock,
 * and on the in-memory test store.
 */
import { Controller, Injectable, Module, Param, Post, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Redis } from 'ioredis';
import request from 'supertest';
import {
  LockError,
  LockService,
  LockTemplateError,
  RedisLockModule,
  Semaphore,
} from '../../lib/index.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { deferred, type Deferred } from './fixtures/gate.js';

/** Calls inside the handlers now, and latches the test opens to let each one finish. */
const inside = { now: 0, max: 0 };
let latches: Deferred[] = [];
async function work(): Promise<string> {
  inside.now++;
  inside.max = Math.max(inside.max, inside.now);
  const latch = deferred();
  latches.push(latch);
  await latch.promise;
  inside.now--;
  return 'done';
}

@Controller('payments')
class PaymentsController {
  @Post(':tenant/charge')
  @Semaphore('payments:{{tenant}}', { permits: 2, waitTimeout: 0, ttl: 10_000 })
  async charge(@Param('tenant') tenant: string) {
    await work();
    return { tenant };
  }
}

@Injectable()
class ExportJob {
  runs = 0;
  @Semaphore('exports', { permits: 1, onNotAcquired: 'skip' })
  async run(): Promise<string> {
    this.runs++;
    return work();
  }
}

function appModule(forRoot: ReturnType<typeof RedisLockModule.forRoot>) {
  @Module({ imports: [forRoot], controllers: [PaymentsController], providers: [ExportJob] })
  class AppModule {}
  return AppModule;
}

afterAll(() => stopAllRedis());

describe('@Semaphore in an app on Redis', () => {
  let redis: RedisServer;
  let admin: Redis;
  let app: INestApplication;

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
    app = await NestFactory.create(appModule(RedisLockModule.forRoot({ redis: redis.url })), {
      logger: false,
    });
    await app.init();
  });
  afterEach(() => {
    for (const latch of latches) latch.resolve();
    latches = [];
  });
  afterAll(() => app.close());

  it('lets N requests in on a controller and answers 423 to the next', async () => {
    inside.max = 0;
    const post = () => request(app.getHttpServer()).post('/payments/acme/charge');
    const first = post().then((r) => r);
    const second = post().then((r) => r);
    await waitFor(() => latches.length === 2, { message: 'two handlers running' });
    const third = await post();
    expect(third.status).toBe(423);
    expect(third.headers['retry-after']).toBeDefined();
    for (const latch of latches) latch.resolve();
    expect((await first).status).toBe(201);
    expect((await second).status).toBe(201);
    expect(inside.max).toBe(2);
    // Given back: nothing left in Redis.
    expect(await admin.exists('lock:{payments:acme}:semaphore')).toBe(0);
  });

  it("skips a provider's call when its permits are held", async () => {
    const job = app.get(ExportJob);
    const running = job.run();
    await waitFor(() => latches.length === 1, { message: 'the first export running' });
    await expect(job.run()).resolves.toBeUndefined();
    expect(job.runs).toBe(1);
    latches[0].resolve();
    await expect(running).resolves.toBe('done');
  });

  it('offers the permit methods on LockService', async () => {
    const locks = app.get(LockService);
    const permit = await locks.acquirePermit('svc', { permits: 1 });
    expect(await locks.tryAcquirePermit('svc', { permits: 1 })).toBeNull();
    await permit.release();
    await expect(locks.runWithPermit('svc', () => 7, { permits: 1 })).resolves.toBe(7);
  });
});

describe('@Semaphore definitions', () => {
  const define = (key: unknown, options: unknown): unknown => {
    try {
      class Payments {
        @Semaphore(key as never, options as never)
        async charge(id: string) {
          return id;
        }
      }
      return Payments && undefined;
    } catch (err) {
      return err;
    }
  };

  it.each([
    [{ permits: 0 }, 'permits'],
    [{}, 'permits'],
    [{ permits: 2, fair: true }, 'fair'],
    [{ permits: 2, ttl: -1 }, 'ttl'],
    [{ permits: 2, onNotAcquired: 'wait' }, 'onNotAcquired'],
  ])('refuses %p where the class is defined, naming %s', (options, option) => {
    const error = define('pay:{{id}}', options);
    expect(error).toBeInstanceOf(LockTemplateError);
    expect((error as Error).message).toContain('@Semaphore on Payments.charge()');
    expect((error as Error).message).toContain(option);
  });

  it('refuses several keys and unknown placeholders', () => {
    expect(define(['a', 'b'], { permits: 1 })).toBeInstanceOf(LockTemplateError);
    expect(define('pay:{{nope}}', { permits: 1 })).toBeInstanceOf(LockTemplateError);
    expect(define('pay:{{id}}', { permits: 1 })).toBeUndefined();
  });
});

describe('@Semaphore on other stores', () => {
  it('refuses to start with Redlock, naming the method', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    const created = NestFactory.create(
      appModule(RedisLockModule.forRoot({ redlock: { clients: [a.url, b.url] } })),
      { logger: false, abortOnError: false },
    );
    let error: unknown;
    try {
      await (await created).init();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(LockError);
    expect((error as Error).message).toMatch(/PaymentsController\.charge\(\).*Redlock/s);
    await (await created).close();
  });

  it('works on the in-memory store of RedisLockModule.forTest', async () => {
    @Module({
      imports: [RedisLockModule.forTest()],
      providers: [ExportJob],
    })
    class TestModule {}
    const app = await NestFactory.createApplicationContext(TestModule, { logger: false });
    const job = app.get(ExportJob);
    const running = job.run();
    await waitFor(() => latches.length === 1, { message: 'the first export running' });
    await expect(job.run()).resolves.toBeUndefined();
    latches[0].resolve();
    await expect(running).resolves.toBe('done');
    latches = [];
    await app.close();
  });
});
