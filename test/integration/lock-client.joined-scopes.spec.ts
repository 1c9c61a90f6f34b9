/**
 * Reentrant calls that outlive the call that took the lock (fire-and-forget work started inside
 * `run()`): the lock is held, and renewed, until the last scope that joined it has ended.
 */
import type { Redis } from 'ioredis';
import type { LockScope } from '../../lib/core/redis-lock.client.js';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { LockNotAcquiredError } from '../../lib/errors/lock.errors.js';
import { killAllWorkers } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import {
  gate,
  LockAgent,
  LockClients,
  nowMs,
  renewalSeen,
  subscribed,
  uniqueKey,
} from './helpers.js';

describe('RedisLockClient: joined scopes that outlive the scope that took the lock', () => {
  let redis: RedisServer;
  let admin: Redis;
  let agent: LockAgent;
  const clients = new LockClients();
  const lockKey = (key: string) => `lock:{${key}}`;

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
    // Another process contends for the same keys: what the hold count must keep out.
    agent = await LockAgent.start(redis.url);
  });
  afterEach(() => clients.closeAll());
  afterAll(async () => {
    await killAllWorkers();
    await stopAllRedis();
  });

  it('keeps a process that waits for the key out until the last fire-and-forget joined call ends, then lets it in', async () => {
    const locks = clients.create(redis.client());
    const key = uniqueKey('outlives');
    const started = [gate(), gate()];
    const finish = [gate(), gate()];
    const endedAt: number[] = [];
    let outer: RedisLockHandle | undefined;
    const joined: Promise<void>[] = [];

    await locks.run(key, async (lock) => {
      outer = lock;
      for (const i of [0, 1]) {
        // `void this.notify()` in a locked method: started inside the scope, not awaited.
        joined.push(
          locks.run(key, async (inner) => {
            expect(inner).toBe(lock);
            started[i].open();
            await finish[i].promise;
            endedAt[i] = nowMs();
          }),
        );
      }
      await Promise.all(started.map((g) => g.promise));
    });

    // The outer run returned; both joined calls still run under its lock.
    await expect(admin.get(lockKey(key))).resolves.toBe(outer!.token);
    expect(outer!.isHeld()).toBe(true);
    agent.send({ type: 'acquire', id: 'outlives', key, options: { waitTimeout: 20_000 } });
    // The other process was turned away and sleeps until a release wakes it.
    await subscribed(admin, key);

    finish[0].open();
    await joined[0];
    await expect(admin.get(lockKey(key))).resolves.toBe(outer!.token);
    expect(outer!.isHeld()).toBe(true);

    finish[1].open();
    await joined[1];
    // The last joined call ended: the lock is released and the waiting process gets it.
    expect(outer!.isHeld()).toBe(false);
    const granted = await agent.reply('outlives', ['granted', 'failed']);
    expect(granted.type).toBe('granted');
    if (granted.type !== 'granted') return;
    expect(granted.at).toBeGreaterThan(endedAt[1]);
    agent.send({ type: 'release', id: 'outlives' });
    await expect(agent.reply('outlives', ['released'])).resolves.toMatchObject({ released: true });
  });

  it('renews the lock while a joined call runs past the ttl after the outer run returned', async () => {
    const ttl = 300;
    const locks = clients.create(redis.client());
    const key = uniqueKey('renewed');
    const started = gate();
    let joined: Promise<void> | undefined;
    let outer: RedisLockHandle | undefined;
    let outerEndedAt = 0;

    await locks.run(
      key,
      async (lock) => {
        outer = lock;
        joined = locks.run(key, async (inner) => {
          started.open();
          // Waits until the outer run has returned, then outlives its lease twice over.
          await waitFor(() => outerEndedAt > 0, { interval: 5, message: 'the outer run' });
          await renewalSeen(admin, lockKey(key));
          await waitFor(() => nowMs() - outerEndedAt > 2 * ttl, {
            interval: 10,
            message: 'twice the ttl after the outer run returned',
          });
          await renewalSeen(admin, lockKey(key));
          expect(inner.isHeld()).toBe(true);
          expect(inner.signal.aborted).toBe(false);
          await expect(admin.get(lockKey(key))).resolves.toBe(inner.token);
        });
        await started.promise;
      },
      { ttl },
    );
    outerEndedAt = nowMs();

    await joined;
    expect(outer!.isHeld()).toBe(false);
    await expect(admin.exists(lockKey(key))).resolves.toBe(0);
  });

  it('renews a lock taken without autoRenew once its owner returns and joined calls still run', async () => {
    const ttl = 300;
    const locks = clients.create(redis.client());
    const key = uniqueKey('no-auto-renew');
    const started = gate();
    const finish = gate();
    let joined: Promise<boolean> | undefined;
    let outer: RedisLockHandle | undefined;

    await locks.run(
      key,
      async (lock) => {
        outer = lock;
        joined = locks.run(key, async (inner) => {
          started.open();
          await finish.promise;
          return inner.isHeld();
        });
        await started.promise;
      },
      { ttl, autoRenew: false },
    );
    const outerEndedAt = nowMs();

    // Past the lease the owner was given, the joined call still holds the lock in Redis.
    await renewalSeen(admin, lockKey(key));
    await waitFor(() => nowMs() - outerEndedAt > 2 * ttl, { interval: 10, message: '2 ttl' });
    await renewalSeen(admin, lockKey(key));
    await expect(admin.get(lockKey(key))).resolves.toBe(outer!.token);
    finish.open();
    await expect(joined).resolves.toBe(true);
    await expect(admin.exists(lockKey(key))).resolves.toBe(0);
  });

  it('holds a key joined by a multi-key call that also took other keys until that call ends', async () => {
    const locks = clients.create(redis.client());
    const [a, b] = [uniqueKey('multi-a'), uniqueKey('multi-b')];
    const started = gate();
    const finish = gate();
    let joined: Promise<void> | undefined;
    let outer: RedisLockHandle | undefined;

    await locks.run(a, async (lock) => {
      outer = lock;
      // Joins `a`, takes `b`.
      joined = locks.run([a, b], async (inner) => {
        expect(inner).not.toBe(lock);
        started.open();
        await finish.promise;
      });
      await started.promise;
    });

    await expect(admin.get(lockKey(a))).resolves.toBe(outer!.token);
    expect(outer!.isHeld()).toBe(true);
    finish.open();
    await joined;
    await expect(admin.exists(lockKey(a), lockKey(b))).resolves.toBe(0);
  });

  it('holds a joined key while the multi-key call that joined it still waits for its other key', async () => {
    const locks = clients.create(redis.client());
    const other = clients.create(redis.client());
    const [a, b] = [uniqueKey('waiting-a'), uniqueKey('waiting-b')];
    const holderOfB = await other.acquire(b, { ttl: 10_000 });
    let joined: Promise<string | null> | undefined;
    let outer: RedisLockHandle | undefined;

    await locks.run(a, async (lock) => {
      outer = lock;
      joined = locks.run([a, b], async () => admin.get(lockKey(a)), { waitTimeout: 10_000 });
      // The joining call was turned away from `b` and waits for it.
      await subscribed(admin, b);
    });

    await expect(admin.get(lockKey(a))).resolves.toBe(outer!.token);
    expect(outer!.isHeld()).toBe(true);
    await holderOfB.release();
    // Inside the multi-key call, `a` was still the outer lock's.
    await expect(joined).resolves.toBe(outer!.token);
    await expect(admin.exists(lockKey(a), lockKey(b))).resolves.toBe(0);
  });

  it('releases a joined key once the multi-key call that joined it gives up on its other key', async () => {
    const locks = clients.create(redis.client());
    const other = clients.create(redis.client());
    const [a, b] = [uniqueKey('gives-up-a'), uniqueKey('gives-up-b')];
    await other.acquire(b, { ttl: 10_000 });
    const giveUp = new AbortController();
    let joined: Promise<unknown> | undefined;
    let outer: RedisLockHandle | undefined;

    await locks.run(a, async (lock) => {
      outer = lock;
      joined = locks.run([a, b], () => 'ran', { waitTimeout: 10_000, signal: giveUp.signal });
      await subscribed(admin, b);
    });
    await expect(admin.get(lockKey(a))).resolves.toBe(outer!.token);

    giveUp.abort();
    await expect(joined).rejects.toBeInstanceOf(LockNotAcquiredError);
    expect(outer!.isHeld()).toBe(false);
    await expect(admin.exists(lockKey(a))).resolves.toBe(0);
  });

  it('counts each scope once: exiting a joined scope twice does not release the lock under another', async () => {
    const locks = clients.create(redis.client());
    const key = uniqueKey('exit-twice');
    const owner = await locks.enter(key);
    const [first, second] = await locks.runInScope(owner, () =>
      Promise.all([locks.enter(key), locks.enter(key)]),
    );
    expect([first.owned, second.owned]).toEqual([false, false]);

    await locks.exit(first);
    await locks.exit(first);
    await locks.exit(owner);
    await locks.exit(owner);
    await expect(admin.get(lockKey(key))).resolves.toBe(owner.handle.token);
    expect(owner.handle.isHeld()).toBe(true);

    await locks.exit(second);
    await expect(admin.exists(lockKey(key))).resolves.toBe(0);
  });

  it('close() releases a lock that joined calls still hold', async () => {
    const locks = clients.create(redis.client());
    const key = uniqueKey('close');
    const started = gate();
    const finish = gate();
    let scope: LockScope | undefined;

    const owner = await locks.enter(key);
    locks.runInScope(owner, () => {
      void locks.enter(key).then((joined) => {
        scope = joined;
        started.open();
        return finish.promise.then(() => locks.exit(joined));
      });
    });
    await started.promise;
    await locks.exit(owner);
    await expect(admin.get(lockKey(key))).resolves.toBe(owner.handle.token);

    await locks.close();
    await expect(admin.exists(lockKey(key))).resolves.toBe(0);
    expect(scope!.handle.isHeld()).toBe(false);
    finish.open();
  });
});
