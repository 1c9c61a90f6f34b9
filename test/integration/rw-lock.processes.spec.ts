/* Read-write locks across OS processes: overlap, exclusion, no writer starvation, crashed holders. */
import type { ChildProcess } from 'node:child_process';
import type { Redis } from 'ioredis';
import { forkWorker, killAllWorkers, nextMessage } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { LockClients, uniqueKey } from './helpers.js';
import type { RwLoopConfig, RwLoopDone } from './workers/rw-loop.worker.js';

const WORKER = 'test/integration/workers/rw-loop.worker.ts';

describe('Read-write locks across processes', () => {
  const clients = new LockClients();
  let server: RedisServer;
  let admin: Redis;

  beforeAll(async () => {
    server = await startRedis();
    admin = server.client();
  });
  afterEach(async () => {
    await clients.closeAll();
    await killAllWorkers();
  });
  afterAll(() => stopAllRedis());

  /** Forks one worker per config and resolves once all are connected (not started yet). */
  async function fork(configs: Omit<RwLoopConfig, 'url'>[]): Promise<ChildProcess[]> {
    const workers = configs.map((c) =>
      forkWorker(WORKER, [JSON.stringify({ ...c, url: server.url })]),
    );
    await Promise.all(
      workers.map((w) => nextMessage(w, (m: { type: string }) => m.type === 'ready', 20_000)),
    );
    return workers;
  }
  const go = (workers: ChildProcess[]) => workers.forEach((w) => w.send({ type: 'go' }));
  const done = (worker: ChildProcess, timeout = 60_000) =>
    nextMessage<RwLoopDone | { type: 'error'; message: string }>(
      worker,
      (m) => m.type === 'done' || m.type === 'error',
      timeout,
    ).then((m) => {
      if (m.type === 'error') throw new Error(`a worker failed: ${m.message}`);
      return m;
    });

  /** Every key of the lock still in Redis has a TTL. */
  async function everyKeyExpires(key: string): Promise<void> {
    for (const name of await admin.keys(`lock:{${key}}*`)) {
      expect([name, await admin.pttl(name)]).toEqual([name, expect.any(Number)]);
      expect(await admin.pttl(name)).toBeGreaterThan(0);
    }
  }

  it('readers of four processes are inside at the same time', async () => {
    const key = uniqueKey('rw-p-overlap');
    const prefix = `${key}:`;
    const workers = await fork(
      Array.from({ length: 4 }, () => ({
        key,
        prefix,
        role: 'read' as const,
        rounds: 1,
        holdMs: 0,
        barrier: 4,
      })),
    );
    go(workers);
    const reports = await Promise.all(workers.map((w) => done(w)));
    expect(reports.map((r) => r.maxReaders)).toEqual([4, 4, 4, 4]);
    expect(reports.every((r) => r.violations === 0)).toBe(true);
  });

  it('a writer is never inside with anyone else, readers and writers of six processes contending', async () => {
    const key = uniqueKey('rw-p-exclusive');
    const prefix = `${key}:`;
    const side = (role: 'read' | 'write', fair: boolean) => ({
      key,
      prefix,
      role,
      rounds: 25,
      holdMs: 2,
      fair,
    });
    const workers = await fork([
      side('read', false),
      side('read', true),
      side('read', false),
      side('write', false),
      side('write', true),
      side('write', false),
    ]);
    go(workers);
    const reports = await Promise.all(workers.map((w) => done(w)));
    expect(reports.map((r) => r.violations)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(reports.map((r) => r.grants)).toEqual([25, 25, 25, 25, 25, 25]);
    // Writers' fencing tokens rise strictly across all writers.
    const writerTokens = reports.slice(3).flatMap((r) => r.fencingTokens.map(BigInt));
    expect(new Set(writerTokens).size).toBe(writerTokens.length);
    expect(await admin.exists(`lock:{${key}}`)).toBe(0);
    await everyKeyExpires(key);
  });

  it('a steady stream of readers from four processes never starves a writer', async () => {
    const key = uniqueKey('rw-p-starve');
    const prefix = `${key}:`;
    // Each reader holds 60 ms and asks again at once; four of them keep the lock read-held
    // without a gap, so a writer that merely waited for "no reader" would wait forever.
    const readers = await fork(
      Array.from({ length: 4 }, () => ({
        key,
        prefix,
        role: 'read' as const,
        rounds: 0,
        holdMs: 60,
      })),
    );
    const [writer] = await fork([{ key, prefix, role: 'write', rounds: 3, holdMs: 5 }]);
    go(readers);
    const readersInside = async () => Number(await admin.get(`${prefix}inside:read`));
    const until = Date.now() + 10_000;
    while ((await readersInside()) < 2 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    go([writer]);
    const written = await done(writer, 30_000);
    expect(written.grants).toBe(3);
    expect(written.violations).toBe(0);
    await admin.set(`${prefix}stop`, '1', 'PX', 60_000);
    const reports = await Promise.all(readers.map((w) => done(w)));
    expect(reports.every((r) => r.violations === 0)).toBe(true);
    expect(Math.max(...reports.map((r) => r.maxReaders))).toBeGreaterThanOrEqual(2);
  });

  it.each(['read', 'write'] as const)(
    "a SIGKILLed %s holder's lock comes back after its lease",
    async (role) => {
      const key = uniqueKey(`rw-p-kill-${role}`);
      const [holder] = await fork([
        { key, prefix: `${key}:`, role, rounds: 1, holdMs: 0, hold: true, ttl: 1_500 },
      ]);
      go([holder]);
      await nextMessage(holder, (m: { type: string }) => m.type === 'holding', 20_000);
      const locks = clients.create(server.client());
      await expect(locks.tryAcquire(key, { mode: 'write' })).resolves.toBeNull();
      holder.kill('SIGKILL');
      const writer = await locks.acquire(key, { mode: 'write', waitTimeout: 20_000 });
      expect(writer.isHeld()).toBe(true);
      expect(await admin.zcard(`lock:{${key}}`)).toBe(1);
      await writer.release();
      expect(await admin.exists(`lock:{${key}}`)).toBe(0);
      await everyKeyExpires(key);
    },
  );
});
