/**
 * Several Nest apps in one process, each with its own RedisLockModule: each locks on its own Redis
 * server and prefix only, and none sees the others' locks.
 */
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { Gate } from './fixtures/gate.js';
import { lockKeysIn } from './fixtures/lock-keys.js';
import { createOrdersApp, PLATFORMS } from './fixtures/orders.app.js';

describe('apps on different Redis servers and prefixes in one process', () => {
  let first: RedisServer;
  let second: RedisServer;
  /** onFirst and prefixed share a server but not a prefix; onSecond has a server of its own. */
  let onFirst: INestApplication;
  let prefixed: INestApplication;
  let onSecond: INestApplication;

  beforeAll(async () => {
    [first, second] = await Promise.all([startRedis(), startRedis()]);
    [onFirst, prefixed, onSecond] = await Promise.all([
      createOrdersApp(PLATFORMS[0], { redis: first.url }),
      createOrdersApp(PLATFORMS[1], { redis: first.url, keyPrefix: 'tenant-b:' }),
      createOrdersApp(PLATFORMS[0], { redis: second.url }),
    ]);
  });

  afterAll(async () => {
    for (const app of [onFirst, prefixed, onSecond]) app?.get(Gate).reset();
    await Promise.all([onFirst, prefixed, onSecond].map((app) => app?.close()));
    await stopAllRedis();
  });

  it('lets each app hold the same key at once, each on its own server and prefix only', async () => {
    const apps = [onFirst, prefixed, onSecond];
    const pending = apps.map((app) => {
      app.get(Gate).hold('pay:1');
      return request(app.getHttpServer())
        .post('/orders/1/pay')
        .then((response) => response);
    });
    await Promise.all(apps.map((app) => app.get(Gate).arrived('pay:1')));

    expect(await lockKeysIn(first.client())).toEqual(['lock:{order:1}', 'tenant-b:{order:1}']);
    expect(await lockKeysIn(second.client())).toEqual(['lock:{order:1}']);
    // Each app is still exclusive on its own lock.
    for (const app of apps) {
      await request(app.getHttpServer()).post('/orders/1/pay').expect(423);
    }

    for (const app of apps) app.get(Gate).release('pay:1');
    expect((await Promise.all(pending)).map((response) => response.status)).toEqual([
      201, 201, 201,
    ]);
    expect(await lockKeysIn(first.client())).toEqual([]);
    expect(await lockKeysIn(second.client())).toEqual([]);
  });

  it('keeps locking in the other apps after one app is closed', async () => {
    await onFirst.close();

    for (const app of [prefixed, onSecond]) {
      await request(app.getHttpServer()).post('/orders/2/pay').expect(201, { paid: '2' });
    }
  });
});
