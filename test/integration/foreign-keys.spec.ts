import type { Redis } from 'ioredis';
import { LockScripts } from '../../lib/core/redis/scripts/index.js';
import { LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { LockClients, rejectionOf, uniqueKey } from './helpers.js';

/** A hash tag no other test uses, braces included. */
const uniqueTag = (label: string) => `{${uniqueKey(label)}}`;

describe('lock scripts: a key another writer spoilt fails the script before it writes', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  /** The message a spoilt fencing counter gives, naming it. */
  const spoiltCounter = (counter: string) =>
    `Redis key "${counter}" should be a fencing counter (a decimal integer) or absent`;

  it.each([
    ['a hash', (key: string) => admin.hset(key, 'owner', 'someone else')],
    ['a string that is no integer', (key: string) => admin.set(key, 'someone else')],
  ])(
    'acquire leaves no lock key and names the counter when the counter holds %s',
    async (_, spoil) => {
      const locks = clients.create(redis.client());
      const key = uniqueKey('spoilt');
      const counter = `lock:{${key}}:fence`;
      await spoil(counter);

      const { error } = await rejectionOf(locks.acquire(key, { ttl: 30_000 }));
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect(error.message).toContain(spoiltCounter(counter));
      await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
    },
  );

  it('a multi-key acquire leaves none of its lock keys when one counter is spoilt', async () => {
    const locks = clients.create(redis.client());
    const [a, b] = [uniqueKey('multi-a'), uniqueKey('multi-b')];
    await admin.hset(`lock:{${b}}:fence`, 'owner', 'someone else');

    const { error } = await rejectionOf(locks.acquire([a, b], { ttl: 30_000 }));
    expect(error.message).toContain(spoiltCounter(`lock:{${b}}:fence`));
    await expect(admin.exists(`lock:{${a}}`, `lock:{${b}}`, `lock:{${a}}:fence`)).resolves.toBe(0);
  });

  it('a fair acquire leaves no lock key when the counter is spoilt', async () => {
    const locks = clients.create(redis.client(), { fair: true });
    const key = uniqueKey('fair-spoilt');
    await admin.hset(`lock:{${key}}:fence`, 'owner', 'someone else');

    const { error } = await rejectionOf(locks.acquire(key, { ttl: 30_000 }));
    expect(error.message).toContain(spoiltCounter(`lock:{${key}}:fence`));
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
  });

  /** Every key's DUMP (null when absent): equal before and after means nothing was written. */
  const snapshot = (keys: string[]) => Promise.all(keys.map((key) => admin.dumpBuffer(key)));

  /** A token of the lock client id `c1c1...` (waiters are told on channels named after it). */
  const token = (n: number) => `${'c1'.repeat(8)}${String(n).padStart(32, '0')}`;

  it.each([
    {
      script: 'release' as const,
      spoilt: 'the counter (a waiter is queued to hand the lock to)',
      setUp: async (k: string) => {
        await admin.set(`${k}`, token(1), 'PX', 30_000);
        await admin.zadd(`${k}:queue`, 1, token(2));
        await admin.zadd(`${k}:timeouts`, Date.now() + 60_000, token(2));
        await admin.hset(`${k}:fence`, 'owner', 'someone else');
      },
      keys: (k: string) => [k, `${k}:queue`, `${k}:timeouts`, `${k}:fence`],
      args: [token(1), 5_000, token(3)],
      named: (k: string) => `${k}:fence`,
    },
    {
      script: 'leaveQueue' as const,
      spoilt: 'the lock key',
      setUp: async (k: string) => {
        await admin.hset(k, 'owner', 'someone else');
        await admin.zadd(`${k}:queue`, 1, token(2));
        await admin.zadd(`${k}:timeouts`, Date.now() + 60_000, token(2));
      },
      keys: (k: string) => [k, `${k}:queue`, `${k}:timeouts`, `${k}:fence`],
      args: [token(2), 5_000],
      named: (k: string) => k,
    },
    {
      script: 'raiseFence' as const,
      spoilt: 'the second counter',
      setUp: async (k: string) => {
        await admin.set(`${k}:a:fence`, '16');
        await admin.hset(`${k}:b:fence`, 'owner', 'someone else');
      },
      keys: (k: string) => [`${k}:a:fence`, `${k}:b:fence`],
      args: ['1000'],
      named: (k: string) => `${k}:b:fence`,
    },
    {
      script: 'releaseUnqueued' as const,
      spoilt: 'the second lock key',
      setUp: async (k: string) => {
        await admin.set(`${k}:a`, token(1), 'PX', 30_000);
        await admin.hset(`${k}:b`, 'owner', 'someone else');
      },
      keys: (k: string) => [`${k}:a`, `${k}:b`],
      args: [token(1)],
      named: (k: string) => `${k}:b`,
    },
  ])('$script answers an error naming $spoilt and writes nothing', async (c) => {
    const k = `lock:${uniqueTag(c.script)}`;
    await c.setUp(k);
    const keys = c.keys(k);
    const before = await snapshot(keys);

    const { error } = await rejectionOf(LockScripts[c.script].run(admin, keys, c.args));
    expect(error.message).toMatch(new RegExp(`^Redis key "${escape(c.named(k))}" should be `));
    await expect(snapshot(keys)).resolves.toEqual(before);
  });
});

/** `text` as a literal in a RegExp. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
