/**
 * One side of a read-write lock in a process of its own, taking it in a loop and checking from
 * inside every critical section, through an independent Redis connection, who else is inside:
 * `INCR inside:<role>` on the way in and `DECR` on the way out, so a writer must see itself alone
 * and a reader must see no writer (a violation is counted otherwise).
 *
 * argv[2]: JSON `RwLoopConfig`. Sends `{ type: 'ready' }`, waits for `{ type: 'go' }`, then:
 * - `rounds` > 0: takes the lock that many times and reports `RwLoopDone`;
 * - `rounds` 0: takes it until the key `<prefix>stop` exists, then reports;
 * - `hold`: takes it once, sends `{ type: 'holding' }` and keeps it (renewed) until killed.
 * With `barrier` (readers), each reader stays inside until that many readers have come inside:
 * readers that exclude each other never get past it, and report an error.
 */
import { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisLockClient } from '../../../lib/core/redis-lock.client.js';
import { nextParentMessage, sendToParent } from '../../support/worker-ipc.js';

export interface RwLoopConfig {
  url: string;
  key: string;
  prefix: string;
  role: 'read' | 'write';
  rounds: number;
  holdMs: number;
  ttl?: number;
  fair?: boolean;
  hold?: boolean;
  barrier?: number;
}

export interface RwLoopDone {
  type: 'done';
  grants: number;
  violations: number;
  maxReaders: number;
  fencingTokens: string[];
}

const config = JSON.parse(process.argv[2]) as RwLoopConfig;
const redis = new Redis(config.url);
const observer = new Redis(config.url);
const locks = new RedisLockClient({ redis, logger: { warn: () => undefined } });
const inside = (role: string) => `${config.prefix}inside:${role}`;
const other = config.role === 'read' ? 'write' : 'read';

async function main(): Promise<void> {
  await sendToParent({ type: 'ready' });
  await nextParentMessage((m: { type: string }) => m.type === 'go');
  const options = { mode: config.role, ttl: config.ttl ?? 5_000, fair: config.fair };
  if (config.hold) {
    await locks.acquire(config.key, { ...options, waitTimeout: 10_000, autoRenew: true });
    await sendToParent({ type: 'holding' });
    await new Promise(() => undefined);
  }
  let grants = 0;
  let violations = 0;
  let maxReaders = 0;
  const fencingTokens: string[] = [];
  const more = async () =>
    config.rounds > 0 ? grants < config.rounds : !(await observer.exists(`${config.prefix}stop`));
  while (await more()) {
    await locks.run(
      config.key,
      async (lock) => {
        const [[, mine], [, theirs]] = (await observer
          .multi()
          .incr(inside(config.role))
          .get(inside(other))
          .exec()) as [unknown, number | string | null][];
        const others = Number(theirs ?? 0);
        if (others > 0 || (config.role === 'write' && Number(mine) !== 1)) violations++;
        if (config.role === 'read') maxReaders = Math.max(maxReaders, Number(mine));
        fencingTokens.push(lock.fencingToken.toString());
        if (config.barrier) {
          // `arrived` only grows: nobody leaves before all arrived, so when the last arrives,
          // all are inside at once.
          await observer.incr(`${config.prefix}arrived`);
          const until = Date.now() + 10_000;
          while (Number(await observer.get(`${config.prefix}arrived`)) < config.barrier) {
            if (Date.now() > until) {
              const holders = await observer.zcard(lock.redisKey);
              throw new Error(`readers never were inside together (holders: ${holders})`);
            }
            await sleep(5);
          }
          maxReaders = Math.max(maxReaders, config.barrier);
        }
        // The critical section's work.
        await sleep(config.holdMs);
        await observer.decr(inside(config.role));
      },
      { ...options, waitTimeout: 20_000 },
    );
    grants++;
  }
  const done: RwLoopDone = { type: 'done', grants, violations, maxReaders, fencingTokens };
  await sendToParent(done);
  await locks.close();
  redis.disconnect();
  observer.disconnect();
}

main().catch(async (err: unknown) => {
  await sendToParent({ type: 'error', message: (err as Error).message }).catch(() => undefined);
  process.exit(1);
});
