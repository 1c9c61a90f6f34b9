import type { Redis } from 'ioredis';
import { LockError, LockLostError, LockNotAcquiredError } from '../../lib/errors/lock.errors.js';
import { PermitNotAcquiredError } from '../../lib/errors/semaphore.errors.js';
import { InMemoryLockStore } from '../../lib/core/memory/in-memory-lock.store.js';
import { exited, forkWorker, killAllWorkers, nextMessage } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { LockClients, nowMs, rejectionOf, uniqueKey } from './helpers.js';
import type { PermitLoopConfig } from './workers/permit-loop.worker.js';

const PERMIT_WORKER = 'test/integration/workers/permit-loop.worker.ts';
/** Redis clock slack: leases end on Redis' wall clock, the test reads the monotonic one. */
const CLOCK_SLACK = 5;

describe('semaphores on one Redis', () => {
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
  afterAll(() => stopAllRedis());

  const holdersKey = (key: string) => `lock:{${key}}:semaphore`;

  function startWorkers(config: Omit<PermitLoopConfig, 'url'>, processes: number) {
    return Array.from({ length: processes }, () =>
      forkWorker(PERMIT_WORKER, [JSON.stringify({ url: redis.url, ...config })]),
    );
  }

  it('never lets more than N holders in at once, across processes', async () => {
    const key = uniqueKey('sem');
    const config = {
      key,
      inside: `inside:${key}`,
      permits: 3,
      waiters: 3,
      grants: 15,
      ttl: 10_000,
      holdMs: 5,
    };
    const workers = startWorkers(config, 4);
    await Promise.all(
      workers.map((w) => nextMessage(w, (m: { type: string }) => m.type === 'ready', 20_000)),
    );
    for (const worker of workers) worker.send({ type: 'go' });
    const reports = await Promise.all(
      workers.map((w) =>
        nextMessage<{ type: string; grants: number; maxInside: number; message?: string }>(
          w,
          (m) => m.type === 'done' || m.type === 'error',
          120_000,
        ),
      ),
    );
    for (const report of reports) expect(report.message).toBeUndefined();
    expect(reports.reduce((sum, r) => sum + r.grants, 0)).toBe(4 * 3 * 15);
    // 12 callers for 3 permits: the counter reached N (the contention was real), never N + 1.
    expect(Math.max(...reports.map((r) => r.maxInside))).toBe(3);
    await Promise.all(workers.map((w) => exited(w)));
    // Everything released: nothing of the semaphore is left in Redis.
    expect(await admin.exists(holdersKey(key))).toBe(0);
  }, 180_000);

  it("gives a SIGKILLed holder's permit back when its lease ends, not before", async () => {
    const key = uniqueKey('sem-crash');
    const ttl = 1_500;
    const [holder] = startWorkers(
      { key, inside: 'unused', permits: 1, waiters: 1, grants: 0, ttl, holdMs: 0, crash: true },
      1,
    );
    const { before } = await nextMessage<{ type: string; before: number }>(
      holder,
      (m: { type: string }) => m.type === 'holding',
      20_000,
    );
    holder.kill('SIGKILL');
    await exited(holder);
    const locks = clients.create(redis.client());
    expect(await locks.tryAcquirePermit(key, { permits: 1 })).toBeNull();
    const permit = await locks.acquirePermit(key, { permits: 1, waitTimeout: 10_000 });
    const at = nowMs();
    expect(permit.isHeld()).toBe(true);
    // Not before the dead holder's lease (counted from before it asked) ended in Redis.
    expect(at).toBeGreaterThanOrEqual(before + ttl - CLOCK_SLACK);
    await permit.release();
  }, 30_000);

  it('keeps a TTL on the holders key while held, and leaves no key once released', async () => {
    const key = uniqueKey('sem-ttl');
    const locks = clients.create(redis.client());
    const permits = await Promise.all(
      [1_000, 5_000, 3_000].map((ttl) => locks.acquirePermit(key, { permits: 3, ttl })),
    );
    const pttl = await admin.pttl(holdersKey(key));
    // At least the longest lease, and never without one.
    expect(pttl).toBeGreaterThan(3_000);
    expect(pttl).toBeLessThanOrEqual(5_000);
    await permits[1].extend(8_000);
    expect(await admin.pttl(holdersKey(key))).toBeGreaterThan(5_000);
    for (const permit of permits) expect(await permit.release()).toBe(true);
    expect(await admin.exists(holdersKey(key))).toBe(0);
  });

  it('refuses a permit when N are held, and wakes a waiter on a release (no lease wait)', async () => {
    const key = uniqueKey('sem-wake');
    const locks = clients.create(redis.client());
    const other = clients.create(redis.client());
    const held = [
      await locks.acquirePermit(key, { permits: 2, ttl: 60_000 }),
      await locks.acquirePermit(key, { permits: 2, ttl: 60_000 }),
    ];
    expect(await other.tryAcquirePermit(key, { permits: 2 })).toBeNull();
    // The 60 s leases outlast the 20 s wait: only the release's message can let this waiter in.
    const waiting = other.acquirePermit(key, { permits: 2, waitTimeout: 20_000 });
    await waitFor(
      async () => {
        const [, count] = (await admin.pubsub('NUMSUB', `${holdersKey(key)}:released`)) as [
          string,
          number,
        ];
        return count > 0;
      },
      { interval: 5, message: 'the waiter to listen for releases' },
    );
    await held[0].release();
    const permit = await waiting;
    expect(permit.isHeld()).toBe(true);
    await Promise.all([permit.release(), held[1].release()]);
  });

  it('times out with a PermitNotAcquiredError, a LockNotAcquiredError naming the semaphore', async () => {
    const key = uniqueKey('sem-busy');
    const locks = clients.create(redis.client());
    const permit = await locks.acquirePermit(key, { permits: 1, ttl: 60_000 });
    const { error } = await rejectionOf(locks.acquirePermit(key, { permits: 1, waitTimeout: 100 }));
    expect(error).toBeInstanceOf(PermitNotAcquiredError);
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(error.message).toContain(`semaphore "${key}"`);
    expect((error as PermitNotAcquiredError).leaseLeftMs).toBeGreaterThan(50_000);
    const controller = new AbortController();
    const aborted = locks.acquirePermit(key, {
      permits: 1,
      waitTimeout: 60_000,
      signal: controller.signal,
    });
    controller.abort();
    expect((await rejectionOf(aborted)).error).toMatchObject({ aborted: true });
    await permit.release();
  });

  it('applies a new N to new permits only, never revoking holders', async () => {
    const key = uniqueKey('sem-n');
    const locks = clients.create(redis.client());
    const three = await Promise.all(
      [1, 2, 3].map(() => locks.acquirePermit(key, { permits: 3, ttl: 60_000 })),
    );
    // Lowered to 2: the three holders keep their permits, nobody new gets in.
    expect(await locks.tryAcquirePermit(key, { permits: 2 })).toBeNull();
    for (const permit of three) await permit.extend();
    expect(three.every((permit) => permit.isHeld())).toBe(true);
    // Raised to 4: one more gets in.
    const fourth = await locks.tryAcquirePermit(key, { permits: 4 });
    expect(fourth?.isHeld()).toBe(true);
    await Promise.all([...three, fourth!].map((permit) => permit.release()));
  });

  it('loses a permit Redis no longer has: extend throws and the signal aborts', async () => {
    const key = uniqueKey('sem-lost');
    const locks = clients.create(redis.client());
    const permit = await locks.acquirePermit(key, { permits: 2, ttl: 60_000 });
    const { signal } = permit;
    await admin.del(holdersKey(key));
    await expect(permit.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(signal.aborted).toBe(true);
    expect(permit.isHeld()).toBe(false);
    expect(await permit.release()).toBe(false);
  });

  it('renews a permit taken by runWithPermit past its ttl', async () => {
    const key = uniqueKey('sem-renew');
    const locks = clients.create(redis.client());
    const other = clients.create(redis.client());
    await locks.runWithPermit(
      key,
      async (permit) => {
        // Until renewed twice at least: then the first lease is over and the permit is still held.
        const started = nowMs();
        while (nowMs() - started < 1_000) {
          expect(await other.tryAcquirePermit(key, { permits: 1 })).toBeNull();
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(permit.isHeld()).toBe(true);
      },
      { permits: 1, ttl: 400 },
    );
    expect(await admin.exists(holdersKey(key))).toBe(0);
  });

  it('is independent of a plain lock on the same key, and never joined by one', async () => {
    const key = uniqueKey('sem-lock');
    const locks = clients.create(redis.client());
    await locks.runWithPermit(
      key,
      async () => {
        // A lock call inside the permit's scope takes the lock; it does not join the permit.
        await locks.run(key, (lock) => expect(lock.fencingToken).toBeGreaterThan(0n));
      },
      { permits: 1 },
    );
  });

  it('refuses a key of another type with an error naming it, writing nothing', async () => {
    const key = uniqueKey('sem-foreign');
    const locks = clients.create(redis.client());
    await admin.set(holdersKey(key), 'x');
    const { error } = await rejectionOf(locks.acquirePermit(key, { permits: 1 }));
    expect(String((error as Error & { cause?: Error }).cause?.message)).toContain(holdersKey(key));
    expect(await admin.get(holdersKey(key))).toBe('x');
  });

  it('refuses bad options with errors naming them', async () => {
    const locks = clients.create(redis.client());
    for (const permits of [0, -1, 1.5, NaN, '3', undefined]) {
      await expect(locks.acquirePermit('k', { permits } as never)).rejects.toThrow(/"permits"/);
    }
    await expect(locks.acquirePermit('k', { permits: 1, fair: true } as never)).rejects.toThrow(
      /"fair"/,
    );
    await expect(locks.acquirePermit('', { permits: 1 })).rejects.toThrow(/lock key/);
  });

  it('releases the permits it holds on close, and drain waits for them', async () => {
    const key = uniqueKey('sem-close');
    const locks = clients.create(redis.client());
    const permit = await locks.acquirePermit(key, { permits: 1, ttl: 60_000 });
    expect(await locks.drain(0)).toEqual([key]);
    await locks.close();
    expect(permit.isHeld()).toBe(false);
    expect(await admin.exists(holdersKey(key))).toBe(0);
  });

  it('keeps tokens out of JSON and inspect output', async () => {
    const locks = clients.create(redis.client());
    const permit = await locks.acquirePermit(uniqueKey('sem-json'), { permits: 1 });
    const token = (permit as unknown as { token: string }).token;
    expect(JSON.stringify(permit)).not.toContain(token);
    const { inspect } = await import('node:util');
    expect(inspect(permit)).not.toContain(token);
    await permit.release();
  });

  it('is refused at the call with Redlock', async () => {
    const locks = clients.createOn({ redlock: { clients: [redis.client(), redis.client()] } });
    const { error } = await rejectionOf(locks.acquirePermit('k', { permits: 1 }));
    expect(error).toBeInstanceOf(LockError);
    expect(error.message).toMatch(/Semaphores are not supported with Redlock/);
  });

  it('works on the in-memory store, shared by the clients on it', async () => {
    const memory = new InMemoryLockStore();
    const a = clients.createOn({ memory });
    const b = clients.createOn({ memory });
    const permit = await a.acquirePermit('m', { permits: 1, ttl: 60_000 });
    expect(await b.tryAcquirePermit('m', { permits: 1 })).toBeNull();
    const waiting = b.acquirePermit('m', { permits: 1, waitTimeout: 20_000 });
    await permit.release();
    expect((await waiting).isHeld()).toBe(true);
  });
});
