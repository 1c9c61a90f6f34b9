/**
 * One process of the Redlock race: a `RedisLockClient` on five masters (its own five ioredis
 * connections) takes the same key `grants` times, as hard as it can, alternating `acquire` (with a
 * wait) and a `tryAcquire` loop, and checks exclusivity inside each critical section through a
 * plain Redis that is none of the masters:
 * - `INCR inside` must answer 1 (nobody else inside), then `DECR` on the way out;
 * - `RPUSH order <pid>` records who held it, so the test sees the grants interleave.
 *
 * A master may be paused by the test mid-run: an attempt that finds fewer than a majority of the
 * masters answering fails with `LockUnavailableError`, which is counted and retried, as is a
 * release that cannot reach a majority (the lease then runs out by itself).
 *
 * argv[2]: JSON `RedlockLoopConfig` (redlock-protocol.ts). Sends `{ type: 'ready' }`, waits for `{ type: 'go' }`
 * (so both processes start together), then sends a `RedlockLoopReport`.
 */
import { Redis } from 'ioredis';
import { RedisLockClient } from '../../../lib/core/redis-lock.client.js';
import type { RedisLockHandle } from '../../../lib/core/lease/redis-lock.handle.js';
import { exponentialBackoff } from '../../../lib/core/waiting/retry.strategies.js';
import { LockUnavailableError } from '../../../lib/errors/lock.errors.js';
import { sleep } from '../../support/wait-for.js';
import { nextParentMessage, sendToParent } from '../../support/worker-ipc.js';
import type { RedlockLoopConfig, RedlockLoopReport } from './redlock-protocol.js';

const config = JSON.parse(process.argv[2]) as RedlockLoopConfig;
const masters = config.urls.map((url) => {
  // Fail a command rather than queue it for long: the lock client bounds each master anyway.
  const redis = new Redis(url, { maxRetriesPerRequest: 1, disconnectTimeout: 0 });
  redis.on('error', () => undefined);
  return redis;
});
const observer = new Redis(config.observerUrl);
const locks = new RedisLockClient({
  redlock: { clients: masters, nodeTimeout: config.nodeTimeout },
  logger: { warn: () => undefined },
});
// Small backoff: both processes poll hard, so many grants fit in a short test.
const retry = exponentialBackoff({ base: 1, cap: 8 });
const inside = `${config.prefix}inside`;
const order = `${config.prefix}order`;

let maxInside = 0;
let expiredInside = 0;
let unavailable = 0;
let failedReleases = 0;
let busyTries = 0;
let grants = 0;

/** The lock, by `acquire` on even rounds and a `tryAcquire` loop on odd ones. */
async function take(round: number): Promise<RedisLockHandle> {
  for (let attempt = 1; ; attempt++) {
    try {
      if (round % 2 === 0) {
        return await locks.acquire(config.key, { ttl: config.ttl, waitTimeout: 60_000, retry });
      }
      const lock = await locks.tryAcquire(config.key, { ttl: config.ttl });
      if (lock) return lock;
      busyTries++;
    } catch (error) {
      if (!(error instanceof LockUnavailableError)) throw error;
      unavailable++;
    }
    await sleep(retry(attempt) ?? 8);
  }
}

try {
  await Promise.all([...masters.map((redis) => redis.ping()), observer.ping()]);
  const go = nextParentMessage((m: { type: string }) => m.type === 'go');
  await sendToParent({ type: 'ready' });
  await go;
  for (let round = 0; round < config.grants; round++) {
    const lock = await take(round);
    const count = await observer.incr(inside);
    maxInside = Math.max(maxInside, count);
    await observer.pipeline().rpush(order, String(process.pid)).decr(inside).exec();
    if (!lock.isHeld()) expiredInside++;
    try {
      if (!(await lock.release())) failedReleases++;
    } catch {
      failedReleases++;
    }
    grants++;
  }
  const done: RedlockLoopReport = {
    type: 'done',
    pid: process.pid,
    grants,
    maxInside,
    expiredInside,
    unavailable,
    failedReleases,
    busyTries,
  };
  await sendToParent(done);
} catch (error) {
  await sendToParent({
    type: 'error',
    message: error instanceof Error ? error.stack : String(error),
  });
} finally {
  await locks.close();
  for (const redis of masters) redis.disconnect();
  observer.disconnect();
}
process.exit(0);
