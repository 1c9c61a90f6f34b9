/**
 * Adversary probe: a lock passed on in the process with less than half its lease left is confirmed
 * with an EXTEND before its taker runs (PassTakeOver.takeOver). When Redis does not answer that
 * EXTEND (frozen longer than the lease left), takeOver treats it as "the lease it has is still
 * sound" and returns the handle, although the lease ran out while it waited: `run()` then starts
 * its callback on a handle that is already lost, and keeps running after Redis, back, lets
 * another owner take the key.
 */
import type { Redis } from 'ioredis';
import { trustedLease } from '../../lib/core/lease/monotonic-clock.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { gate, LockClients, uniqueKey } from '../integration/helpers.js';

describe('adversary: an unanswered confirmation of a passed lock', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(async () => {
    await redis.resume();
    await clients.closeAll();
  });
  afterAll(() => stopAllRedis());

  it('a taker whose confirmation Redis never answered does not run on the lapsed lease', async () => {
    const key = uniqueKey('unconfirmed-pass');
    const ttl = 1_000;
    const locks = clients.create(redis.client());
    const other = clients.create(redis.client());
    const first = await locks.acquire(key, { ttl });
    const started = gate<{ held: boolean }>();
    const finish = gate();
    const waiter = locks
      .run(
        key,
        async (lock) => {
          started.open({ held: lock.isHeld() });
          await finish.promise;
        },
        { ttl, waitTimeout: 10_000 },
      )
      .catch((err: unknown) => err);
    // Past half its lease, a lock passed on is confirmed before its taker runs.
    await waitFor(() => first.leaseLeft() < trustedLease(ttl) / 2 - 50, {
      interval: 5,
      message: 'the lease to be half gone',
    });
    await redis.pause(); // Redis stalls: the confirmation gets no answer
    await first.release(); // passes the lock to the waiter

    const outcome = await Promise.race([
      started.promise,
      waiter.then(() => 'settled' as const),
      // The confirmation is given up on after min(ttl, 2 s); then the lease is long gone.
      new Promise((r) => setTimeout(r, 2_500, 'still waiting').unref()),
    ]);
    await redis.resume();
    let otherGotIt = false;
    if (typeof outcome === 'object') {
      // The callback runs; once Redis has expired the key, another owner takes it meanwhile.
      await waitFor(async () => (await admin.exists(`lock:{${key}}`)) === 0, { interval: 10 });
      otherGotIt = (await other.tryAcquire(key, { ttl: 30_000 })) !== null;
    }
    finish.open();
    await waiter;
    expect({ outcome, otherGotIt }).not.toEqual(
      expect.objectContaining({ outcome: { held: false } }),
    );
    expect(otherGotIt).toBe(false);
  });
});
