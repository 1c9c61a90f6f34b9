import type { Redis } from 'ioredis';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { LockLostError } from '../../lib/errors/lock.errors.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { commandCalls, LockClients, rejectionOf, uniqueKey } from './helpers.js';

/** Longer than any test here: only releases and the tests' own moves end a lease. */
const LONG_TTL = 30_000;

/**
 * What `release()` resolves with means one thing whichever way the lock leaves: passed to another
 * caller of the same process (no Redis command) or released in Redis. `true`: held until the
 * release. `false`: lost, or its lease ran out, before it; and then the lock is passed to nobody.
 */
describe('LockHandle.release(): one answer, passed on or released in Redis', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  /**
   * Starts an acquire of `key` that finds it busy, and resolves once the waiter acted on that
   * first busy answer (parked, waiting for the holder of its process to let go). The pending
   * acquire is returned in an object, or `await` would wait for it.
   */
  async function parkedWaiter(
    connection: Redis,
    acquire: () => Promise<RedisLockHandle>,
  ): Promise<{ pending: Promise<RedisLockHandle> }> {
    const before = await commandCalls(admin, 'evalsha');
    const pending = acquire();
    pending.catch(() => undefined);
    await waitFor(async () => (await commandCalls(admin, 'evalsha')) > before, {
      interval: 5,
      message: "the waiter's first attempt to reach Redis",
    });
    // The busy answer came on the waiter's connection before this PING's reply.
    await connection.ping();
    await admin.ping();
    return { pending };
  }

  it('resolves true for a held lock both ways: passed to a waiter of this process (still in Redis under its token), then released in Redis', async () => {
    const key = uniqueKey('held-both-ways');
    const connection = redis.client();
    const locks = clients.create(connection);
    const holder = await locks.acquire(key, { ttl: LONG_TTL });
    const { pending } = await parkedWaiter(connection, () =>
      locks.acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 }),
    );

    // Passed on: the waiter holds the same grant, and Redis was not asked.
    await expect(holder.release()).resolves.toBe(true);
    const passed = await pending;
    expect(passed.token).toBe(holder.token);
    expect(passed.fencingToken).toBe(holder.fencingToken + 1n);
    await expect(admin.get(passed.redisKey)).resolves.toBe(holder.token);

    // Nobody waits now: released in Redis, which found the token.
    await expect(passed.release()).resolves.toBe(true);
    await expect(admin.exists(passed.redisKey)).resolves.toBe(0);
  });

  it('resolves false for a lock lost before its release, even when Redis has its token again, and passes it to no waiter', async () => {
    const key = uniqueKey('lost');
    const connection = redis.client();
    const locks = clients.create(connection);
    const holder = await locks.acquire(key, { ttl: LONG_TTL });
    // Taken behind the holder's back; its next extend learns it, and the lock is lost.
    await admin.set(holder.redisKey, 'someone-else', 'PX', LONG_TTL);
    expect((await rejectionOf(holder.extend())).error).toBeInstanceOf(LockLostError);
    expect(holder.isHeld()).toBe(false);
    // The key holds the token again: Redis alone would call the release successful.
    await admin.set(holder.redisKey, holder.token, 'PX', LONG_TTL);
    const { pending } = await parkedWaiter(connection, () =>
      locks.acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 }),
    );

    await expect(holder.release()).resolves.toBe(false);
    // Not passed on: the waiter got the lock from Redis, under a token of its own.
    const next = await pending;
    expect(next.token).not.toBe(holder.token);
    await expect(admin.get(next.redisKey)).resolves.toBe(next.token);
    await expect(next.release()).resolves.toBe(true);
  });

  it('resolves false once its lease ran out (no watchdog), even when Redis still had the key, and deletes the key', async () => {
    const key = uniqueKey('lapsed');
    const locks = clients.create(redis.client());
    const holder = await locks.acquire(key, { ttl: 300 });
    await waitFor(() => !holder.isHeld(), { interval: 5, message: 'the lease to run out' });
    // Redis keeps a key a drift margin longer than the process trusts its lease: here, longer.
    await admin.set(holder.redisKey, holder.token, 'PX', LONG_TTL);

    await expect(holder.release()).resolves.toBe(false);
    await expect(admin.exists(holder.redisKey)).resolves.toBe(0);
    // Later calls answer like the first.
    await expect(holder.release()).resolves.toBe(false);
  });
});
