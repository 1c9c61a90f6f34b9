/**
 * Semaphore contender: `waiters` callers of one process take permits of one key in a loop and
 * count themselves inside through an independent Redis connection (`INCR inside` on entry, the
 * reply the number of holders inside at that moment, across every process; `DECR` on the way out),
 * holding each permit `holdMs` (a stand-in for work). With `crash`, it takes one permit, reports
 * `{ type: 'holding', before }` (CLOCK_MONOTONIC ms read before the acquiring command was sent) and
 * waits to be killed.
 *
 * argv[2]: JSON `PermitLoopConfig`. Sends `{ type: 'ready' }`, waits for `{ type: 'go' }`, then
 * sends `{ type: 'done', pid, grants, maxInside }` or `{ type: 'error', message }`.
 */
import { Redis } from 'ioredis';
import { RedisLockClient } from '../../../lib/core/redis-lock.client.js';
import { nextParentMessage, sendToParent } from '../../support/worker-ipc.js';

export interface PermitLoopConfig {
  url: string;
  key: string;
  /** Where the inside counter lives. */
  inside: string;
  permits: number;
  waiters: number;
  grants: number;
  ttl: number;
  holdMs: number;
  crash?: boolean;
}

const config = JSON.parse(process.argv[2]) as PermitLoopConfig;
const redis = new Redis(config.url);
const observer = new Redis(config.url);
const locks = new RedisLockClient({ redis, logger: { warn: () => undefined } });
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let maxInside = 0;
let grants = 0;

async function waiter(): Promise<void> {
  for (let round = 0; round < config.grants; round++) {
    await locks.runWithPermit(
      config.key,
      async () => {
        const inside = await observer.incr(config.inside);
        maxInside = Math.max(maxInside, inside);
        await pause(config.holdMs);
        await observer.decr(config.inside);
      },
      { permits: config.permits, ttl: config.ttl, waitTimeout: 60_000 },
    );
    grants++;
  }
}

try {
  await Promise.all([redis.ping(), observer.ping()]);
  if (config.crash) {
    const before = nowMs();
    await locks.acquirePermit(config.key, {
      permits: config.permits,
      ttl: config.ttl,
      autoRenew: true,
    });
    await sendToParent({ type: 'holding', before });
    await new Promise(() => undefined); // until SIGKILL
  }
  const go = nextParentMessage((m: { type: string }) => m.type === 'go');
  await sendToParent({ type: 'ready' });
  await go;
  await Promise.all(Array.from({ length: config.waiters }, () => waiter()));
  await sendToParent({ type: 'done', pid: process.pid, grants, maxInside });
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
