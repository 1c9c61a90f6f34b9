/**
 * Takes the same lock `grants` times in a row, as hard as it can, and inside each critical section
 * checks exclusivity through an independent Redis connection:
 * - `INCR insideKey` must answer 1 (nobody else inside), then `DECR` on the way out;
 * - a non-atomic read-modify-write of `counterKey` (GET, then SET + 1) loses updates unless the
 *   critical sections never overlap.
 * It also appends its pid to `orderKey`, so the test can see the grants really interleaved.
 *
 * argv[2]: JSON `{ url, key, grants, ttl, insideKey, counterKey, orderKey }`.
 * Sends `{ type: 'ready' }`, waits for `{ type: 'go' }` (so all workers start together), then
 * `{ type: 'done', pid, grants, maxInside, failedReleases }` or `{ type: 'error', message }`.
 */
import { Redis } from 'ioredis';
import { RedisLockClient } from '../../../lib/core/redis-lock.client.js';
import { exponentialBackoff } from '../../../lib/core/waiting/retry.strategies.js';
import { nextParentMessage, sendToParent } from '../worker-ipc.js';

interface Config {
  url: string;
  key: string;
  grants: number;
  ttl: number;
  insideKey: string;
  counterKey: string;
  orderKey: string;
}

const config = JSON.parse(process.argv[2]) as Config;
const redis = new Redis(config.url);
const observer = new Redis(config.url);
const warnings: string[] = [];
const locks = new RedisLockClient({ redis, logger: { warn: (m) => void warnings.push(m) } });
// Small backoff: waiters poll hard, so many grants fit in a short test.
const retry = exponentialBackoff({ base: 1, cap: 8 });

try {
  await Promise.all([redis.ping(), observer.ping()]);
  const go = nextParentMessage((m: { type: string }) => m.type === 'go');
  await sendToParent({ type: 'ready' });
  await go;

  let maxInside = 0;
  let failedReleases = 0;
  let grants = 0;
  for (let i = 0; i < config.grants; i++) {
    const lock = await locks.acquire(config.key, { ttl: config.ttl, waitTimeout: 60_000, retry });
    const inside = await observer.incr(config.insideKey);
    maxInside = Math.max(maxInside, inside);
    const count = Number((await observer.get(config.counterKey)) ?? 0);
    await observer.set(config.counterKey, String(count + 1));
    await observer.rpush(config.orderKey, String(process.pid));
    await observer.decr(config.insideKey);
    if (!(await lock.release())) failedReleases++;
    grants++;
  }
  await sendToParent({
    type: 'done',
    pid: process.pid,
    grants,
    maxInside,
    failedReleases,
    warnings,
  });
} catch (error) {
  await sendToParent({
    type: 'error',
    message: error instanceof Error ? error.stack : String(error),
  });
} finally {
  await locks.close();
  redis.disconnect();
  observer.disconnect();
}
process.exit(0);
