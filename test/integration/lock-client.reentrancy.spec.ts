import type { Redis } from 'ioredis';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { LockNotAcquiredError } from '../../lib/errors/lock.errors.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { commandCalls, gate, LockClients, nowMs, rejectionOf, uniqueKey } from './helpers.js';
import { LOCK_BACKENDS, lockBackend } from './lock-backends.js';

describe.each(LOCK_BACKENDS)('RedisLockClient.run on %s: scoping and reentrancy', (name) => {
  const backend = lockBackend(name);
  const admin = backend.keys;
  it('runs fn under the lock, returns its result and releases afterwards', async () => {
    const locks = backend.client();
    const key = uniqueKey('run');
    let seen: string | null = null;
    let handle: RedisLockHandle | undefined;
    const result = await locks.run(key, async (lock) => {
      handle = lock;
      seen = await admin.get(lock.redisKey);
      return 'result';
    });
    expect(result).toBe('result');
    expect(seen).toBe(handle!.token);
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
    expect(handle!.isHeld()).toBe(false);
  });

  it('releases and rethrows when fn throws', async () => {
    const locks = backend.client();
    const key = uniqueKey('throws');
    const boom = new Error('boom');
    const { error } = await rejectionOf(
      locks.run(key, () => {
        throw boom;
      }),
    );
    expect(error).toBe(boom);
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
  });

  it('renews by default: a fn that outlives its ttl (four renewals) keeps the lock and token', async () => {
    expect.hasAssertions();
    const ttl = 300;
    const locks = backend.client();
    await locks.run(
      uniqueKey('renews'),
      async (lock) => {
        const started = nowMs();
        let previous = await admin.pttl(lock.redisKey);
        let renewals = 0;
        await waitFor(
          async () => {
            const pttl = await admin.pttl(lock.redisKey);
            if (pttl > previous + 20) renewals++;
            previous = pttl;
            return renewals >= 4;
          },
          { interval: 10, message: 'four renewals' },
        );
        expect(nowMs() - started).toBeGreaterThan(ttl);
        await expect(admin.get(lock.redisKey)).resolves.toBe(lock.token);
        expect(lock.signal.aborted).toBe(false);
      },
      { ttl },
    );
  });

  it('joins the held lock when run(K) is called inside run(K): same handle, fn runs, no deadlock', async () => {
    const locks = backend.client();
    const key = uniqueKey('nested');
    const calls: string[] = [];
    let outerLock: RedisLockHandle | undefined;
    let innerLock: RedisLockHandle | undefined;
    let innerMs = 0;

    await locks.run(key, async (outer) => {
      outerLock = outer;
      const started = nowMs();
      // A waitTimeout long enough that a self-deadlock would show as a slow or failed call.
      await locks.run(
        key,
        async (inner) => {
          innerLock = inner;
          calls.push('inner');
          await locks.run(key, () => calls.push('innermost'), { waitTimeout: 5000 });
        },
        { waitTimeout: 5000 },
      );
      innerMs = nowMs() - started;
      calls.push('outer');
      // Leaving the joined scopes did not release the outer lock.
      await expect(admin.get(outer.redisKey)).resolves.toBe(outer.token);
      expect(outer.isHeld()).toBe(true);
    });

    expect(calls).toEqual(['inner', 'innermost', 'outer']);
    expect(innerLock).toBe(outerLock);
    expect(innerMs).toBeLessThan(1000);
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
  });

  it('keeps the outer lock when a joined inner run throws', async () => {
    expect.hasAssertions();
    const locks = backend.client();
    const key = uniqueKey('inner-throws');
    await locks.run(key, async (outer) => {
      await expect(
        locks.run(key, () => {
          throw new Error('inner failed');
        }),
      ).rejects.toThrow('inner failed');
      expect(outer.isHeld()).toBe(true);
      await expect(admin.get(outer.redisKey)).resolves.toBe(outer.token);
    });
  });

  it('joins per key: run(K2) inside run(K1) takes K2 on its own', async () => {
    expect.hasAssertions();
    const locks = backend.client();
    const [k1, k2] = [uniqueKey('k1'), uniqueKey('k2')];
    await locks.run(k1, async (outer) => {
      await locks.run(k2, async (inner) => {
        expect(inner).not.toBe(outer);
        expect(inner.token).not.toBe(outer.token);
        await expect(admin.get(`lock:{${k1}}`)).resolves.toBe(outer.token);
        await expect(admin.get(`lock:{${k2}}`)).resolves.toBe(inner.token);
      });
      await expect(admin.exists(`lock:{${k2}}`)).resolves.toBe(0);
      await expect(admin.get(`lock:{${k1}}`)).resolves.toBe(outer.token);
    });
  });

  it('does not let two RedisLockClient instances in one process join each other', async () => {
    // One assertion inside the outer fn: it must have run.
    expect.assertions(2);
    const a = backend.client();
    const b = backend.client();
    const key = uniqueKey('two-clients');
    let innerRan = false;
    await a.run(key, async () => {
      const { error } = await rejectionOf(b.run(key, () => (innerRan = true)));
      expect(error).toBeInstanceOf(LockNotAcquiredError);
    });
    expect(innerRan).toBe(false);
  });

  it('takes the lock anew for a call made from the scope after the scope released it', async () => {
    // One assertion inside the late fn: it must have run.
    expect.assertions(4);
    const locks = backend.client();
    const key = uniqueKey('late');
    const resume = gate();
    let outerToken = '';
    let late: Promise<string> | undefined;
    await locks.run(key, async (outer) => {
      outerToken = outer.token;
      // A continuation created inside the scope, run only after the scope has ended.
      late = resume.promise.then(() =>
        locks.run(key, async (lock) => {
          await expect(admin.get(lock.redisKey)).resolves.toBe(lock.token);
          return lock.token;
        }),
      );
    });
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
    resume.open();
    const lateToken = await late!;
    expect(lateToken).not.toBe(outerToken);
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
  });
});

describe('RedisLockClient.run: scoping and reentrancy (Redis only)', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  it('excludes a concurrent run(K) of the same process that is not inside the holder', async () => {
    const locks = clients.create(redis.client());
    const key = uniqueKey('concurrent');
    const holding = gate();
    const releaseOuter = gate();
    const order: string[] = [];

    const outer = locks.run(key, async () => {
      order.push('outer start');
      holding.open();
      await releaseOuter.promise;
      order.push('outer end');
    });
    await holding.promise;

    // Started from the test, not from inside the outer fn: a different call chain.
    let calledFn = false;
    const { error } = await rejectionOf(locks.run(key, () => (calledFn = true)));
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(calledFn).toBe(false);
    await expect(locks.tryAcquire(key)).resolves.toBeNull();

    const attemptsBefore = await commandCalls(admin, 'evalsha');
    const waiter = locks.run(key, () => order.push('waiter'), { waitTimeout: 10_000 });
    // The waiter's attempt reached Redis, which turned it away: it waits for the holder to let
    // go (here it will be passed the lock, as both are in this process).
    await waitFor(async () => (await commandCalls(admin, 'evalsha')) > attemptsBefore, {
      message: "the waiter's attempt to reach Redis",
    });
    expect(order).toEqual(['outer start']);
    releaseOuter.open();
    await Promise.all([outer, waiter]);
    expect(order).toEqual(['outer start', 'outer end', 'waiter']);
  });
});
