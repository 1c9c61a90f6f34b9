/**
 * @Lock on HTTP routes, end to end on Express and Fastify: a real app, a real redis-server, requests
 * through supertest. Handlers wait on a Gate so a test knows when a lock is held.
 */
import type { INestApplication } from '@nestjs/common';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { freePort, startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { CommandLog } from './fixtures/command-log.js';
import { lockKeysIn } from './fixtures/lock-keys.js';
import { Gate } from './fixtures/gate.js';
import { createOrdersApp, PLATFORMS } from './fixtures/orders.app.js';

const TOKEN = /^[0-9a-f]{48}$/;

afterAll(() => stopAllRedis());

describe.each(PLATFORMS)('@Lock on HTTP routes ($platform)', (platformCase) => {
  let redis: RedisServer;
  let app: INestApplication;
  let gate: Gate;
  let raw: Redis;
  let log: CommandLog;

  const http = () => request(app.getHttpServer());
  /** Starts a request now (supertest is lazy) and returns its response. */
  const start = (test: request.Test) => test.then((response) => response);

  beforeAll(async () => {
    redis = await startRedis();
    app = await createOrdersApp(platformCase, { redis: redis.url });
    gate = app.get(Gate);
    raw = redis.client();
    log = await CommandLog.start(redis);
  });

  afterEach(async () => {
    gate.reset();
    // Every test ends with its locks released; a leftover key would hide the next test's keys.
    expect(await lockKeysIn(raw)).toEqual([]);
  });

  afterAll(async () => {
    gate?.reset();
    log?.stop();
    await app?.close();
    await redis?.stop();
  });

  describe('while a request holds order 1', () => {
    it('answers a second request for order 1 with 423 Locked and no token in the body', async () => {
      gate.hold('pay:1');
      const first = start(http().post('/orders/1/pay'));
      await gate.arrived('pay:1');
      const token = await raw.get('lock:{order:1}');
      expect(token).toMatch(TOKEN);

      const second = await http().post('/orders/1/pay');

      expect(second.status).toBe(423);
      expect(second.body).toEqual({
        statusCode: 423,
        message: expect.stringContaining('"order:1"'),
        error: 'Locked',
      });
      expect(second.text).not.toContain(token);
      expect(gate.journal.filter((entry) => entry === 'start pay:1')).toHaveLength(1);
      gate.release('pay:1');
      expect((await first).status).toBe(201);
    });

    it('serves a request for order 2 concurrently', async () => {
      gate.hold('pay:1');
      const first = start(http().post('/orders/1/pay'));
      await gate.arrived('pay:1');

      const other = await http().post('/orders/2/pay');

      expect(other.status).toBe(201);
      expect(other.body).toEqual({ paid: '2' });
      // The first one is still in its handler, holding its lock.
      expect(gate.journal).not.toContain('end pay:1');
      expect(await raw.exists('lock:{order:1}')).toBe(1);
      gate.release('pay:1');
      expect((await first).status).toBe(201);
    });

    it('deletes the key by the time the first request has been answered', async () => {
      gate.hold('pay:1');
      const first = start(http().post('/orders/1/pay'));
      await gate.arrived('pay:1');
      expect(await raw.exists('lock:{order:1}')).toBe(1);

      gate.release('pay:1');
      const response = await first;

      expect(response.status).toBe(201);
      expect(response.body).toEqual({ paid: '1' });
      expect(await raw.exists('lock:{order:1}')).toBe(0);
    });

    it('makes a request with waitTimeout wait for the holder, then succeed', async () => {
      gate.hold('pay:1');
      const first = start(http().post('/orders/1/pay'));
      await gate.arrived('pay:1');
      log.clear();

      const patient = start(http().post('/orders/1/pay-patiently'));
      // Two refused attempts on the key: the second request is waiting, not failing.
      await waitFor(() => log.setKeys().filter((key) => key === 'lock:{order:1}').length >= 2, {
        message: 'the waiting request to retry the lock',
      });
      expect(gate.ran('patient:1')).toBe(false);
      gate.release('pay:1');

      expect((await first).status).toBe(201);
      const response = await patient;
      expect(response.status).toBe(201);
      expect(response.body).toEqual({ paid: '1' });
      expect(gate.journal.indexOf('end pay:1')).toBeLessThan(
        gate.journal.lastIndexOf('start patient:1'),
      );
    });
  });

  describe('builds the key from what the handler receives', () => {
    it.each([
      {
        source: '@Param',
        send: () => http().post('/orders/42/pay'),
        gateName: 'pay:42',
        key: 'lock:{order:42}',
      },
      {
        source: '@Query',
        send: () => http().get('/orders/by-query?id=43'),
        gateName: 'query:43',
        key: 'lock:{order:43}',
      },
      {
        source: '@Body, nested {{dto.customer.id}}',
        send: () =>
          http()
            .post('/orders/by-body')
            .send({ customer: { id: 'c-7' } }),
        gateName: 'body:c-7',
        key: 'lock:{customer:c-7}',
      },
      {
        source: '@Headers',
        send: () => http().post('/orders/by-header').set('x-tenant', 'acme'),
        gateName: 'header:acme',
        key: 'lock:{tenant:acme}',
      },
      {
        source: 'a createParamDecorator',
        send: () => http().post('/orders/by-user').set('x-user', 'u9@eu'),
        gateName: 'user:u9',
        key: 'lock:{user:eu:u9}',
      },
    ])('from $source', async ({ send, gateName, key }) => {
      gate.hold(gateName);
      const pending = start(send());
      await gate.arrived(gateName);

      expect(await lockKeysIn(raw)).toEqual([key]);
      expect(await raw.get(key)).toMatch(TOKEN);

      gate.release(gateName);
      expect((await pending).status).toBeLessThan(300);
    });
  });

  describe('a value that cannot be part of a key', () => {
    it.each([
      { value: 'a missing query parameter', send: () => http().get('/orders/by-query') },
      {
        value: 'a repeated query parameter (an array)',
        send: () => http().get('/orders/by-query?id=1&id=2'),
      },
      {
        value: 'an over-long value',
        send: () => http().get(`/orders/by-query?id=${'x'.repeat(300)}`),
      },
      {
        value: 'an object in the body',
        send: () =>
          http()
            .post('/orders/by-body')
            .send({ customer: { id: { $ne: null } } }),
      },
      { value: 'a missing body property', send: () => http().post('/orders/by-body').send({}) },
      { value: 'a missing header', send: () => http().post('/orders/by-header') },
    ])('answers 400 for $value, without running the handler or setting a key', async ({ send }) => {
      const journalBefore = gate.journal.length;
      log.clear();

      const response = await send();

      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        statusCode: 400,
        message: 'Invalid lock key input.', // the detail goes to the log only
        error: 'Bad Request',
      });
      expect(gate.journal.length).toBe(journalBefore);
      await log.sync();
      expect(log.setKeys()).toEqual([]);
    });
  });

  describe('when Redis cannot be reached', () => {
    const expectUnavailableWithoutDetail = (response: request.Response, port: number) => {
      expect(response.status).toBe(503);
      expect(response.body).toEqual({
        statusCode: 503,
        message: expect.any(String),
        error: 'Service Unavailable',
      });
      for (const detail of ['127.0.0.1', String(port), 'ECONNREFUSED', 'retries', 'redis://']) {
        expect(response.text).not.toContain(detail);
      }
    };

    /*
     * The module's own client gives up after one reconnect attempt (about 0.1 s here); one that
     * kept ioredis's 20 retries would answer only when the attempt times out (2 s).
     */
    const FAIL_FAST_MS = 1_000;

    it('answers 503 within 1 s once the server has stopped, without running the handler', async () => {
      const doomed = await startRedis();
      const doomedApp = await createOrdersApp(platformCase, { redis: doomed.url });
      try {
        const doomedGate = doomedApp.get(Gate);
        await request(doomedApp.getHttpServer()).post('/orders/7/pay').expect(201);
        await doomed.stop();

        const started = performance.now();
        const response = await request(doomedApp.getHttpServer()).post('/orders/8/pay');
        const ms = performance.now() - started;

        expectUnavailableWithoutDetail(response, doomed.port);
        expect(ms).toBeLessThan(FAIL_FAST_MS);
        expect(doomedGate.ran('pay:8')).toBe(false);
      } finally {
        await doomedApp.close();
      }
    });

    it('answers 503 within 1 s when nothing listens on the configured port', async () => {
      const deadPort = await freePort();
      const deadApp = await createOrdersApp(platformCase, {
        redis: `redis://127.0.0.1:${deadPort}`,
      });
      try {
        const started = performance.now();
        const response = await request(deadApp.getHttpServer()).post('/orders/9/pay');
        const ms = performance.now() - started;

        expectUnavailableWithoutDetail(response, deadPort);
        expect(ms).toBeLessThan(FAIL_FAST_MS);
        expect(deadApp.get(Gate).ran('pay:9')).toBe(false);
      } finally {
        await deadApp.close();
      }
    });
  });
});
