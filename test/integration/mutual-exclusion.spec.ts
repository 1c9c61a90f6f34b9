import type { Redis } from 'ioredis';
import { forkWorker, killAllWorkers, nextMessage, exited } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { uniqueKey } from './helpers.js';

const MUTEX_WORKER = 'test/support/workers/mutex-loop.worker.ts';
const WORKERS = 4;
const GRANTS_PER_WORKER = 750;

interface Done {
  type: 'done';
  pid: number;
  grants: number;
  maxInside: number;
  failedReleases: number;
  warnings: string[];
}

describe('mutual exclusion across OS processes', () => {
  let redis: RedisServer;
  let admin: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterAll(async () => {
    await killAllWorkers();
    await stopAllRedis();
  });

  it(`lets exactly one of ${WORKERS} processes into the critical section, over ${WORKERS * GRANTS_PER_WORKER} grants`, async () => {
    const key = uniqueKey('mutex');
    const config = {
      url: redis.url,
      key,
      grants: GRANTS_PER_WORKER,
      // Long enough that no lease runs out mid-section: this checks the acquire itself.
      ttl: 10_000,
      insideKey: `${key}:inside`,
      counterKey: `${key}:counter`,
      orderKey: `${key}:order`,
    };
    const workers = Array.from({ length: WORKERS }, () =>
      forkWorker(MUTEX_WORKER, [JSON.stringify(config)]),
    );
    await Promise.all(
      workers.map((w) => nextMessage(w, (m: { type: string }) => m.type === 'ready', 20_000)),
    );
    for (const worker of workers) worker.send({ type: 'go' });

    const reports = await Promise.all(
      workers.map((w) =>
        nextMessage<Done | { type: 'error'; message: string }>(
          w,
          (m) => m.type === 'done' || m.type === 'error',
          50_000,
        ),
      ),
    );
    for (const report of reports) {
      if (report.type === 'error') throw new Error(`a worker failed: ${report.message}`);
    }
    const done = reports as Done[];

    // Four different processes took part, each got all of its grants.
    expect(new Set(done.map((r) => r.pid)).size).toBe(WORKERS);
    expect(done.map((r) => r.grants)).toEqual(Array(WORKERS).fill(GRANTS_PER_WORKER));
    // Never two inside at once, seen by every worker's INCR...
    expect(Math.max(...done.map((r) => r.maxInside))).toBe(1);
    // ...and no lost update in the non-atomic read-modify-write.
    await expect(admin.get(config.counterKey)).resolves.toBe(String(WORKERS * GRANTS_PER_WORKER));
    await expect(admin.get(config.insideKey)).resolves.toBe('0');
    // The processes really competed: the lock changed hands between them many times.
    const order = await admin.lrange(config.orderKey, 0, -1);
    expect(order).toHaveLength(WORKERS * GRANTS_PER_WORKER);
    const handovers = order.filter((pid, i) => i > 0 && pid !== order[i - 1]).length;
    expect(handovers).toBeGreaterThan(100);
    // Every grant was still held when released, and nothing is left behind.
    expect(done.map((r) => r.failedReleases)).toEqual(Array(WORKERS).fill(0));
    expect(done.flatMap((r) => r.warnings)).toEqual([]);
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
    for (const worker of workers)
      await expect(exited(worker)).resolves.toEqual({ code: 0, signal: null });
  }, 60_000);
});
