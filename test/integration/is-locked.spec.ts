import { Redis } from 'ioredis';
import { InvalidLockKeyError, LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { freePort, startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { LockClients, rejectionOf, uniqueKey } from './helpers.js';

/**
 * `isLocked` takes a key or several, like every other method. Several keys answer the question a
 * multi-key lock raises, "is this lock taken?": true when any of them is held, so that
 * `tryAcquire` on the same keys would be refused.
 */
describe('RedisLockClient.isLocked: one key or several', () => {
  let redis: RedisServer;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  it('is true for several keys when any one of them is held, alone or inside another multi-key lock, and agrees with tryAcquire', async () => {
    const locks = clients.create(redis.client());
    const other = clients.create(redis.client());
    const [a, b, c] = ['a', 'b', 'c'].map((name) => uniqueKey(`is-locked-${name}`));

    await expect(locks.isLocked([a, b])).resolves.toBe(false);

    // Only the second key held (by another client): the lock [a, b] is taken.
    const holdsB = await other.acquire(b);
    await expect(locks.isLocked([a, b])).resolves.toBe(true);
    await expect(locks.isLocked([b, a])).resolves.toBe(true);
    await expect(locks.isLocked(a)).resolves.toBe(false);
    await expect(locks.tryAcquire([a, b])).resolves.toBeNull();
    await holdsB.release();

    // A multi-key lock [b, c] makes [a, b] taken through its shared key, and [a] free.
    const holdsBC = await other.acquire([b, c]);
    await expect(locks.isLocked([a, b])).resolves.toBe(true);
    await expect(locks.isLocked([c])).resolves.toBe(true);
    await expect(locks.isLocked([a])).resolves.toBe(false);
    await holdsBC.release();

    await expect(locks.isLocked([a, b, c])).resolves.toBe(false);
    const both = await locks.tryAcquire([a, b]);
    expect(both).not.toBeNull();
    await expect(other.isLocked([a, b])).resolves.toBe(true);
    await both!.release();
    await expect(other.isLocked([a, b])).resolves.toBe(false);
  });

  it('looks at the keys under the client prefix, and nothing else', async () => {
    const locks = clients.create(redis.client(), { keyPrefix: 'app-one:' });
    const key = uniqueKey('prefixed');
    // The same name under another prefix is another lock.
    const elsewhere = await clients
      .create(redis.client(), { keyPrefix: 'app-two:' })
      .acquire([key, `${key}-x`]);
    await expect(locks.isLocked([key, `${key}-x`])).resolves.toBe(false);
    const held = await locks.acquire(key);
    await expect(locks.isLocked([`${key}-x`, key])).resolves.toBe(true);
    await held.release();
    await elsewhere.release();
  });

  it('refuses an empty array or an empty key with InvalidLockKeyError', async () => {
    const locks = clients.create(redis.client());
    for (const bad of [[], [''], ['ok', '']] as string[][]) {
      const { error } = await rejectionOf(locks.isLocked(bad));
      expect(error).toBeInstanceOf(InvalidLockKeyError);
    }
  });

  it('fails with LockUnavailableError naming the keys when Redis cannot be reached', async () => {
    // A port nobody listens on; `disconnectTimeout: 0` so no timer outlives the test.
    const dead = new Redis({
      host: '127.0.0.1',
      port: await freePort(),
      maxRetriesPerRequest: 1,
      disconnectTimeout: 0,
    });
    dead.on('error', () => undefined);
    try {
      const { error } = await rejectionOf(clients.create(dead).isLocked(['k1', 'k2']));
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect(error.message).toContain('k1, k2');
    } finally {
      dead.disconnect();
    }
  });
});
