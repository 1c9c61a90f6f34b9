import type { Redis } from 'ioredis';
import { LockLostError } from '../../lib/errors/lock.errors.js';
import { killAllWorkers } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import {
  CommandLog,
  LockClients,
  monitorCaughtUp,
  nowMs,
  runContendLoop,
  uniqueKey,
} from './helpers.js';
import { LOCK_BACKENDS, lockBackend } from './lock-backends.js';
import { grantsOf, type LoopConfig } from './workers/protocol.js';

const lockKey = (key: string) => `lock:{${key}}`;
/** Distinct keys for one test, named a, b, c... in sorted order. */
const keysFor = (label: string, n: number) => {
  const base = uniqueKey(label);
  return Array.from({ length: n }, (_, i) => `${base}:${String.fromCharCode(97 + i)}`);
};

describe.each(LOCK_BACKENDS)(
  'multi-key locks on %s: several keys at once, all or nothing',
  (name) => {
    const backend = lockBackend(name);
    const admin = backend.keys;
    describe('all or nothing', () => {
      it('tryAcquire returns null and sets no key while any one of them is held by someone else', async () => {
        const [a, b, c] = keysFor('none', 3);
        const other = backend.client();
        const locks = backend.client();
        for (const busy of [a, b, c]) {
          const holder = await other.acquire(busy, { ttl: 30_000 });
          await expect(locks.tryAcquire([a, b, c])).resolves.toBeNull();
          // The free keys were not taken (nor left behind) by the failed attempt.
          for (const key of [a, b, c]) {
            await expect(admin.get(lockKey(key))).resolves.toBe(key === busy ? holder.token : null);
          }
          await holder.release();
        }
      });

      it('acquire waits for the busy key and then takes all of them at once; release frees all', async () => {
        const [a, b] = keysFor('wait-all', 2);
        const holder = await backend.client().acquire(b, { ttl: 30_000 });
        const locks = backend.client();
        const waiting = locks.acquire([b, a], { ttl: 30_000, waitTimeout: 10_000 });
        await backend.subscribed(b);
        await expect(admin.exists(lockKey(a))).resolves.toBe(0); // not held while waiting for b
        await holder.release();
        const releasedAt = nowMs();
        const lock = await waiting;
        expect(nowMs() - releasedAt).toBeLessThan(1000);
        expect(lock.keys).toEqual([a, b]);
        await expect(admin.get(lockKey(a))).resolves.toBe(lock.token);
        await expect(admin.get(lockKey(b))).resolves.toBe(lock.token);

        await expect(lock.release()).resolves.toBe(true);
        await expect(admin.exists(lockKey(a), lockKey(b))).resolves.toBe(0);
      });

      it('extend renews the lease of every key', async () => {
        const keys = keysFor('extend', 3);
        const lock = await backend.client().acquire(keys, { ttl: 1000 });
        for (const key of keys) expect(await admin.pttl(lockKey(key))).toBeLessThanOrEqual(1000);
        await lock.extend(30_000);
        for (const key of keys) expect(await admin.pttl(lockKey(key))).toBeGreaterThan(25_000);
        await lock.release();
      });

      it('losing one key loses the whole lock: the watchdog aborts the signal with LockLostError', async () => {
        const [a, b] = keysFor('lost', 2);
        const locks = backend.client();
        const lock = await locks.acquire([a, b], { ttl: 600, autoRenew: true });
        const { signal } = lock;
        await admin.del(lockKey(b));
        // The next renewal (every ttl / 3) finds b gone.
        await waitFor(() => signal.aborted, { timeout: 2000, message: 'the signal to abort' });
        expect(signal.reason).toBeInstanceOf(LockLostError);
        expect(lock.isHeld()).toBe(false);
        // Release clears what is left, and says the lock was not held in full.
        await expect(lock.release()).resolves.toBe(false);
        await expect(admin.exists(lockKey(a), lockKey(b))).resolves.toBe(0);
      });

      it('extend of a lock missing one key fails with LockLostError and renews none', async () => {
        const [a, b] = keysFor('extend-lost', 2);
        const lock = await backend.client().acquire([a, b], { ttl: 5000 });
        await admin.del(lockKey(a));
        await expect(lock.extend(30_000)).rejects.toBeInstanceOf(LockLostError);
        expect(await admin.pttl(lockKey(b))).toBeLessThanOrEqual(5000);
        await expect(admin.get(lockKey(b))).resolves.toBe(lock.token);
      });
    });

    it('duplicate keys lock one key, and handle.keys is sorted whatever the order given', async () => {
      const [a, b, c] = keysFor('dupes', 3);
      const locks = backend.client();

      const single = await locks.acquire([a, a]);
      expect(single.keys).toEqual([a]);
      expect(single.key).toBe(a);
      expect(single.redisKey).toBe(lockKey(a));
      await expect(admin.get(lockKey(a))).resolves.toBe(single.token);
      await expect(single.release()).resolves.toBe(true); // held every key: the one
      await expect(admin.exists(lockKey(a))).resolves.toBe(0);

      const three = await locks.acquire([c, a, b, c, a]);
      expect(three.keys).toEqual([a, b, c]);
      expect(three.key).toBe(`${a}, ${b}, ${c}`);
      expect(three.redisKey).toBe(lockKey(a));
      for (const key of [a, b, c]) await expect(admin.get(lockKey(key))).resolves.toBe(three.token);
      await expect(three.release()).resolves.toBe(true);
    });
  },
);

describe('multi-key locks: several keys at once, all or nothing (Redis only)', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(async () => {
    await killAllWorkers();
    await clients.closeAll();
  });
  afterAll(async () => {
    await killAllWorkers();
    await stopAllRedis();
  });

  describe.each([
    { mode: 'default', fair: false, grants: 170 },
    { mode: 'fair', fair: true, grants: 50 },
  ])('no deadlock with crossing and overlapping key orders ($mode mode)', ({ fair, grants }) => {
    it(`3 processes x 2 waiters, ${6 * grants} grants, one holder per key at a time`, async () => {
      const PROCESSES = 3;
      const WAITERS = 2;
      const [A, B, C] = ['A', 'B', 'C'].map((k) => `${uniqueKey('cross')}:${k}`);
      const keySets = [[A, B], [B, A], [B, C], [C, A], [A, B, C], [C, B, A], [C]];
      const config: LoopConfig = {
        url: redis.url,
        keySets,
        waiters: WAITERS,
        grants,
        // Far beyond the test: expiry never breaks a deadlock here, it must not happen at all.
        ttl: 30_000,
        waitTimeout: 60_000,
        fair,
        // Fair waiters re-check every 10 s: a lost wake-up would show as a stall.
        fairQueueTimeout: 30_000,
        prefix: `${A}:`,
      };
      const { reports: done } = await runContendLoop(config, PROCESSES, 25_000);
      expect(done.map((r) => r.grants)).toEqual(Array(PROCESSES).fill(WAITERS * grants));
      // Never two holders of one key at once, seen from inside every critical section.
      expect(Math.max(...done.map((r) => r.maxInside))).toBe(1);
      expect(done.map((r) => r.failedReleases)).toEqual(Array(PROCESSES).fill(0));
      expect(done.flatMap((r) => r.warnings)).toEqual([]);

      // Every grant is logged under each key it covered, per key the fencing tokens rise, and no
      // key sat unused for long (a lost wake-up leaves it so until a 10 s re-check or 30 s lease).
      const expected = new Map([A, B, C].map((k) => [k, 0]));
      for (let w = 0; w < WAITERS; w++) {
        for (let round = 0; round < grants; round++) {
          for (const k of new Set(keySets[(w + round) % keySets.length])) {
            expected.set(k, expected.get(k)! + PROCESSES);
          }
        }
      }
      for (const key of [A, B, C]) {
        const logged = await grantsOf(admin, config.prefix, key);
        expect(logged).toHaveLength(expected.get(key)!);
        for (let i = 1; i < logged.length; i++) {
          if (logged[i].fencingToken <= logged[i - 1].fencingToken) {
            throw new Error(`${key}: fencing token #${i} is not above #${i - 1}`);
          }
          expect(logged[i].at - logged[i - 1].at).toBeLessThan(5000);
        }
      }
      await expect(admin.exists(lockKey(A), lockKey(B), lockKey(C))).resolves.toBe(0);
    }, 60_000);
  });

  it('reentrancy: inside run([a, b]), run(a) and run([b, a]) join; run([a, c]) takes only c', async () => {
    // Eleven of them inside the fns: each must have run.
    expect.assertions(12);
    const [a, b, c] = keysFor('reentrant', 3);
    const locks = clients.create(redis.client());
    // Every script loaded before counting (a first EVALSHA fails with NOSCRIPT and is retried).
    await (await locks.acquire(uniqueKey('warm-up'))).release();
    const log = await CommandLog.start(admin);
    try {
      await locks.run([a, b], async (outer) => {
        await locks.run(a, async (inner) => {
          expect(inner).toBe(outer);
        });
        await locks.run([b, a], async (inner) => {
          expect(inner).toBe(outer);
        });
        await expect(admin.get(lockKey(a))).resolves.toBe(outer.token); // joins release nothing

        await locks.run([a, c], async (inner) => {
          expect(inner).not.toBe(outer);
          expect(inner.keys).toEqual([c]);
          await expect(admin.get(lockKey(c))).resolves.toBe(inner.token);
          await expect(admin.get(lockKey(a))).resolves.toBe(outer.token);
        });
        // The inner run released c only.
        await expect(admin.exists(lockKey(c))).resolves.toBe(0);
        await expect(admin.get(lockKey(a))).resolves.toBe(outer.token);
        await expect(admin.get(lockKey(b))).resolves.toBe(outer.token);

        // The joins sent nothing: the outer lock's scripts are its acquire and renewals only.
        await monitorCaughtUp(admin, log);
        expect(log.scriptsOf(outer.token).filter((name) => name !== 'extend')).toEqual(['acquire']);
      });
      await expect(admin.exists(lockKey(a), lockKey(b), lockKey(c))).resolves.toBe(0);
    } finally {
      log.stop();
    }
  });
});
