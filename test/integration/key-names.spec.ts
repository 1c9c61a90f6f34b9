import type { Redis } from 'ioredis';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { LockClients, subscribed, uniqueKey } from './helpers.js';

/** A hash tag no other test uses, braces included: `{orders:<pid>:<n>}`. */
const uniqueTag = (label: string) => `{${uniqueKey(label)}}`;

describe('lock keys in Redis: no key names another lock, or its counter or queue', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  /** Each handle holds its own key in Redis. */
  async function expectBothHeld(...handles: { redisKey: string; token: string }[]) {
    expect(new Set(handles.map((h) => h.redisKey)).size).toBe(handles.length);
    for (const handle of handles) {
      await expect(admin.get(handle.redisKey)).resolves.toBe(handle.token);
    }
  }

  it('locks "{orders}:1:fence" and "{orders}:1" apart, whichever is taken first', async () => {
    const locks = clients.create(redis.client());
    for (const counterFirst of [true, false]) {
      const order = `${uniqueTag('orders')}:1`;
      const lookalike = `${order}:fence`;
      const first = await locks.acquire(counterFirst ? lookalike : order, { ttl: 30_000 });
      const second = await locks.acquire(counterFirst ? order : lookalike, { ttl: 30_000 });
      await expectBothHeld(first, second);
      await expect(second.release()).resolves.toBe(true);
      await expect(first.release()).resolves.toBe(true);
      await expect(admin.exists(first.redisKey, second.redisKey)).resolves.toBe(0);
    }
  });

  it('locks "x" and "{x}" apart', async () => {
    const locks = clients.create(redis.client());
    const x = uniqueKey('x');
    const tagged = await locks.acquire(`{${x}}`, { ttl: 30_000 });
    const plain = await locks.tryAcquire(x, { ttl: 30_000 });
    expect(plain).not.toBeNull();
    await expectBothHeld(tagged, plain!);
  });

  describe('with a hash tag in keyPrefix', () => {
    it('keeps "job:queue" and "job:queue:timeouts" free while fair waiters queue for "job"', async () => {
      const keyPrefix = `app:${uniqueTag('eu')}:`;
      const holder = await clients.create(redis.client(), { keyPrefix }).acquire('job');
      const fair = clients.create(redis.client(), { keyPrefix, fair: true });
      const waiting = fair.acquire('job', { ttl: 30_000, waitTimeout: 10_000 });
      // Whatever the queue is named: a sorted set appears under the prefix.
      await waitFor(
        async () => {
          const names = await admin.keys(`${keyPrefix}*`);
          const types = await Promise.all(names.map((name) => admin.type(name)));
          return types.includes('zset');
        },
        { interval: 5, message: 'the fair waiter to queue' },
      );

      const other = clients.create(redis.client(), { keyPrefix });
      const lookalikes = [
        await other.tryAcquire('job:queue', { ttl: 30_000 }),
        await other.tryAcquire('job:queue:timeouts', { ttl: 30_000 }),
      ];
      expect(lookalikes).not.toContain(null);

      await holder.release();
      const handedOver = await waiting;
      expect(handedOver.redisKey).toBe(`${keyPrefix}job:lock`);
      await expectBothHeld(handedOver, lookalikes[0]!, lookalikes[1]!);
    });

    it('grants "job" in fair mode while another owner holds "job:queue"', async () => {
      const keyPrefix = `app:${uniqueTag('eu')}:`;
      const lookalike = await clients.create(redis.client(), { keyPrefix }).acquire('job:queue');
      const job = await clients
        .create(redis.client(), { keyPrefix })
        .acquire('job', { fair: true });
      await expectBothHeld(lookalike, job);
    });
  });

  it('never passes the single key "{a}\\nlock:{b}" to a waiter for the keys a and b', async () => {
    const [a, b] = [uniqueKey('id-a'), uniqueKey('id-b')];
    const holder = await clients.create(redis.client()).acquire([a, b], { ttl: 30_000 });
    const locks = clients.create(redis.client());
    const waiting = locks.acquire([a, b], { ttl: 30_000, waitTimeout: 10_000 });
    await subscribed(admin, a);
    const single = await locks.acquire(`{${a}}\nlock:{${b}}`, { ttl: 30_000 });

    // Released in Redis, not passed on in the process: nobody here waits for that key.
    await expect(single.release()).resolves.toBe(true);
    await expect(admin.exists(single.redisKey)).resolves.toBe(0);

    await holder.release();
    const both = await waiting;
    expect(both.token).not.toBe(single.token);
    await expect(admin.get(`lock:{${a}}`)).resolves.toBe(both.token);
    await expect(admin.get(`lock:{${b}}`)).resolves.toBe(both.token);
  });
});
