/**
 * Waits and leases near Node's timer limit (2^31 - 1 ms, beyond which a setTimeout fires after
 * 1 ms): a "wait forever" must wait, and a ttl the timers cannot keep must be refused.
 */
import type { Redis } from 'ioredis';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { MAX_TIMER_DELAY } from '../../lib/redis-lock.constants.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { LockClients, nowMs, uniqueKey } from './helpers.js';

const LONG_WAITS = [Number.MAX_SAFE_INTEGER, 2 ** 31, Infinity];

describe('RedisLockClient: waits and leases past 2^31 - 1 ms', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  it.each(LONG_WAITS)(
    'waitTimeout %p takes a free key every time (20 acquires, run(), and as the client default)',
    async (waitTimeout) => {
      const locks = clients.create(redis.client());
      const key = uniqueKey('free');
      for (let i = 0; i < 20; i++) {
        const lock = await locks.acquire(key, { waitTimeout });
        await expect(lock.release()).resolves.toBe(true);
      }
      await expect(locks.run(key, () => 'ran', { waitTimeout })).resolves.toBe('ran');
      const byDefault = clients.create(redis.client(), { waitTimeout });
      await expect(byDefault.run(key, () => 'ran')).resolves.toBe('ran');
    },
  );

  describe.each([false, true])('fair: %p', (fair) => {
    it.each(LONG_WAITS)(
      'waitTimeout %p: two waiters of one process wait out a holder whose 300 ms lease lapses, and both get the key',
      async (waitTimeout) => {
        const holderTtl = 300;
        const key = uniqueKey('busy');
        const before = nowMs();
        // Not renewed and never released: the key frees when its lease runs out in Redis.
        await clients.create(redis.client()).acquire(key, { ttl: holderTtl });
        const waiters = clients.create(redis.client());
        const grantedAt: number[] = [];
        const take = (lock: RedisLockHandle) => {
          grantedAt.push(nowMs());
          return lock.release();
        };
        // The second waits behind the first in this process (fair: in the queue in Redis).
        const results = await Promise.all([
          waiters.acquire(key, { waitTimeout, fair }).then(take),
          waiters.acquire(key, { waitTimeout, fair }).then(take),
        ]);
        expect(results).toEqual([true, true]);
        expect(Math.min(...grantedAt) - before).toBeGreaterThanOrEqual(holderTtl);
      },
    );
  });

  it('refuses a ttl, extend(ttl) or fairQueueTimeout above 2^31 - 1 ms with a RangeError naming the limit', async () => {
    const limit = /at most 2147483647/;
    const locks = clients.create(redis.client());
    const key = uniqueKey('ttl-limit');
    for (const ttl of [2 ** 31, Number.MAX_SAFE_INTEGER]) {
      await expect(locks.acquire(key, { ttl })).rejects.toThrow(RangeError);
      await expect(locks.run(key, () => 'ran', { ttl })).rejects.toThrow(limit);
    }
    expect(() => clients.create(redis.client(), { ttl: 2 ** 31 })).toThrow(RangeError);
    expect(() => clients.create(redis.client(), { ttl: 2 ** 31 })).toThrow(limit);
    expect(() => clients.create(redis.client(), { fairQueueTimeout: 2 ** 31 })).toThrow(limit);
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);

    // The limit itself is a valid ttl, for the grant and for extend.
    const lock = await locks.acquire(key, { ttl: MAX_TIMER_DELAY, autoRenew: true });
    expect(await admin.pttl(lock.redisKey)).toBeGreaterThan(MAX_TIMER_DELAY - 10_000);
    await expect(lock.extend(2 ** 31)).rejects.toThrow(RangeError);
    await expect(lock.extend(2 ** 31)).rejects.toThrow(limit);
    await expect(lock.extend(MAX_TIMER_DELAY)).resolves.toBeUndefined();
    expect(lock.isHeld()).toBe(true);
  });
});
