import type { Redis } from 'ioredis';
import { trustedLease } from '../../lib/core/lease/monotonic-clock.js';
import { LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { gate, LockClients, nowMs, rejectionOf, uniqueKey } from './helpers.js';

describe('RedisLockClient.drain: letting held locks be let go before close', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  it('resolves as soon as the last running lock is released, long before its timeout', async () => {
    const locks = clients.create(redis.client());
    const key = uniqueKey('drain-run');
    const entered = gate();
    const work = gate();
    const running = locks.run(key, () => (entered.open(), work.promise));
    await entered.promise;

    let drained: string[] | undefined;
    const started = nowMs();
    const draining = locks.drain(60_000).then((left) => (drained = left));
    // Still draining, and still holding, while the work runs.
    expect(await admin.exists(`lock:{${key}}`)).toBe(1);
    expect(drained).toBeUndefined();
    work.open();
    await running;
    await draining;

    expect(drained).toEqual([]);
    expect(nowMs() - started).toBeLessThan(1_000);
  });

  it('fails new acquires and waits in progress with LockUnavailableError once draining', async () => {
    const locks = clients.create(redis.client());
    const key = uniqueKey('drain-refuse');
    const held = await clients.create(redis.client()).acquire(key, { ttl: 30_000 });
    const waiting = locks.acquire(key, { waitTimeout: 30_000 });

    const draining = locks.drain(0);

    const { error, ms } = await rejectionOf(waiting);
    expect(error).toBeInstanceOf(LockUnavailableError);
    expect(ms).toBeLessThan(1_000);
    await expect(locks.tryAcquire(uniqueKey('fresh'))).rejects.toBeInstanceOf(LockUnavailableError);
    await expect(draining).resolves.toEqual([]);
    await held.release();
  });

  it('ends when a lock without a watchdog reaches the end of its trusted lease (ttl 200 ms), not at the timeout', async () => {
    const locks = clients.create(redis.client());
    const key = uniqueKey('drain-lease');
    const started = nowMs();
    await locks.acquire(key, { ttl: 200 });

    await expect(locks.drain(60_000)).resolves.toEqual([]);
    const took = nowMs() - started;
    expect(took).toBeGreaterThanOrEqual(trustedLease(200));
    expect(took).toBeLessThan(200 + 150);
  });

  it('resolves with the keys still held at the timeout (100 ms), renewed, and close releases them', async () => {
    const locks = clients.create(redis.client());
    const key = uniqueKey('drain-left');
    const handle = await locks.acquire(key, { ttl: 60, autoRenew: true });

    const started = nowMs();
    await expect(locks.drain(100)).resolves.toEqual([key]);
    const took = nowMs() - started;
    expect(took).toBeGreaterThanOrEqual(100);
    expect(took).toBeLessThan(100 + 150);
    // Held past its 60 ms ttl: the watchdog kept renewing during the drain.
    expect(handle.isHeld()).toBe(true);
    expect(await admin.exists(`lock:{${key}}`)).toBe(1);

    await locks.close();
    expect(handle.isHeld()).toBe(false);
    expect(await admin.exists(`lock:{${key}}`)).toBe(0);
  });

  it('refuses a timeout that is not an integer of ms from 0 to 2^31-1', async () => {
    const locks = clients.create(redis.client());
    for (const timeout of [-1, 0.5, 2 ** 31, Number.POSITIVE_INFINITY]) {
      await expect(locks.drain(timeout)).rejects.toThrow(RangeError);
    }
  });
});
