/**
 * @Lock on provider methods, however they are called: a setInterval timer in two app instances,
 * direct calls, a controller calling a provider on the same key (reentrancy), a provider built by
 * useFactory, and a request-scoped provider.
 */
import type { INestApplication, INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { LockNotAcquiredError } from '../../lib/index.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { CommandLog } from './fixtures/command-log.js';
import { lockKeysIn } from './fixtures/lock-keys.js';
import { Gate } from './fixtures/gate.js';
import {
  createJobsApp,
  FactoryMadeReports,
  ReportService,
  TickStats,
} from './fixtures/jobs.app.js';
import { createOrdersApp, OrdersService, PLATFORMS } from './fixtures/orders.app.js';

let redis: RedisServer;
let raw: Redis;

beforeAll(async () => {
  redis = await startRedis();
  raw = redis.client();
});

afterAll(() => stopAllRedis());

describe('a provider method on a setInterval timer in two apps on one Redis', () => {
  const stats = new TickStats();
  let apps: INestApplicationContext[] = [];

  afterAll(async () => {
    stats.live = false;
    await Promise.all(apps.map((app) => app.close()));
  });

  it('never runs in both at once, and the skipped calls return undefined', async () => {
    apps = await Promise.all(
      ['a', 'b'].map((name) => createJobsApp({ redis: redis.url }, { ticker: { stats, name } })),
    );

    await waitFor(() => ['a', 'b'].every((app) => stats.ran(app) >= 2 && stats.skipped(app) >= 2), {
      timeout: 10_000,
      message: () => `both apps to run and skip ticks: ${summary(stats)}`,
    });

    expect(stats.maxActive).toBe(1);
    expect(stats.errors).toEqual([]);
    for (const app of ['a', 'b']) {
      const results = stats.results.get(app) ?? [];
      expect(new Set(results)).toEqual(new Set(['ran', undefined]));
      // Every body that ran answered 'ran', but for the one tick that may be in flight now: the
      // skipped calls (undefined) never ran the body.
      const answeredRan = results.filter((result) => result === 'ran').length;
      expect(stats.ran(app) - answeredRan).toBeGreaterThanOrEqual(0);
      expect(stats.ran(app) - answeredRan).toBeLessThanOrEqual(1);
    }
  });

  function summary(s: TickStats): string {
    return ['a', 'b']
      .map((app) => `${app}: ran ${s.ran(app)}, skipped ${s.skipped(app)}`)
      .join('; ');
  }
});

describe('direct calls to provider methods', () => {
  let app: INestApplicationContext;
  let gate: Gate;

  beforeAll(async () => {
    app = await createJobsApp({ redis: redis.url });
    gate = app.get(Gate);
  });

  afterEach(async () => {
    gate.reset();
    await raw.flushall();
  });

  afterAll(() => app?.close());

  it("throws LockNotAcquiredError by default when the key is held elsewhere ('throw')", async () => {
    await raw.set('lock:{report:1}', 'someone-else');

    await expect(app.get(ReportService).build('1')).rejects.toBeInstanceOf(LockNotAcquiredError);

    expect(gate.ran('report:1')).toBe(false);
    expect(await raw.get('lock:{report:1}')).toBe('someone-else');
  });

  it("resolves undefined without running the method when the key is held ('skip')", async () => {
    await raw.set('lock:{report:nightly}', 'someone-else');

    await expect(app.get(ReportService).nightly()).resolves.toBeUndefined();

    expect(gate.ran('nightly')).toBe(false);
    expect(await raw.get('lock:{report:nightly}')).toBe('someone-else');
  });

  it('locks a provider created with useFactory (the explorer hands it the LockService)', async () => {
    const reports = app.get(FactoryMadeReports);
    expect(Object.getPrototypeOf(reports)).toBe(FactoryMadeReports.prototype);
    gate.hold('factory:1');
    const first = reports.build('1');
    await gate.arrived('factory:1');
    expect(await raw.get('lock:{factory:1}')).toMatch(/^[0-9a-f]{48}$/);

    await expect(reports.build('1')).rejects.toBeInstanceOf(LockNotAcquiredError);

    gate.release('factory:1');
    await expect(first).resolves.toBe('factory 1');
    expect(await raw.exists('lock:{factory:1}')).toBe(0);
  });
});

describe('a controller calling a provider locked on the same key', () => {
  let app: INestApplication;
  let gate: Gate;
  let log: CommandLog;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    app = await createOrdersApp(PLATFORMS[0], { redis: redis.url });
    gate = app.get(Gate);
    log = await CommandLog.start(redis);
  });

  afterEach(() => gate.reset());

  afterAll(async () => {
    log?.stop();
    await app?.close();
  });

  it('joins the held lock (no 423, no deadlock) while outside calls on the key are excluded', async () => {
    log.clear();
    gate.hold('adjust:5');
    const refund = http()
      .post('/orders/5/refund')
      .then((response) => response);
    await gate.arrived('adjust:5');

    // Inside the provider: the controller's lock was joined, not taken a second time.
    await log.sync();
    expect(log.setKeys()).toEqual(['lock:{order:5}']);
    // Outside calls on the same key, over HTTP and directly, are refused.
    const outside = await http().post('/orders/5/pay');
    expect(outside.status).toBe(423);
    await expect(app.get(OrdersService).adjust('5')).rejects.toBeInstanceOf(LockNotAcquiredError);
    expect(gate.ran('pay:5')).toBe(false);
    expect(gate.journal.filter((entry) => entry === 'start adjust:5')).toHaveLength(1);

    gate.release('adjust:5');
    const response = await refund;
    expect(response.status).toBe(201);
    expect(response.body).toEqual({ refund: 'adjusted 5' });
    expect(await raw.exists('lock:{order:5}')).toBe(0);
  });
});

describe('a request-scoped provider with @Lock', () => {
  let app: INestApplication;
  let gate: Gate;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    app = await createOrdersApp(PLATFORMS[0], { redis: redis.url });
    gate = app.get(Gate);
  });

  afterEach(async () => {
    gate.reset();
    await raw.flushall();
  });

  afterAll(() => app?.close());

  it('takes its own lock inside the request and releases it', async () => {
    gate.hold('ledger:1');
    const pending = http()
      .post('/ledger/1')
      .then((response) => response);
    await gate.arrived('ledger:1');

    expect(await lockKeysIn(raw)).toEqual(['lock:{entry:1}', 'lock:{ledger:1}']);

    gate.release('ledger:1');
    const response = await pending;
    expect(response.status).toBe(201);
    expect(response.body).toEqual({ result: 'recorded 1' });
    expect(await lockKeysIn(raw)).toEqual([]);
  });

  it('is refused (423) when its key is held elsewhere', async () => {
    await raw.set('lock:{ledger:2}', 'someone-else');

    const response = await http().post('/ledger/2');

    expect(response.status).toBe(423);
    expect(response.body).toMatchObject({ statusCode: 423, error: 'Locked' });
    expect(response.body.message).toContain('"ledger:2"');
    expect(gate.ran('ledger:2')).toBe(false);
  });
});
