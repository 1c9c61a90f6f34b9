/**
 * Several waiters of one process take locks in a loop, as hard as they can, and record every
 * grant from inside its critical section through an independent Redis connection:
 * - `INCR inside:KEY` for every key of the grant must answer 1 (nobody else holds that key), then
 *   `DECR` on the way out;
 * - `RPUSH grants:KEY "<fencing token> <CLOCK_MONOTONIC ms> <pid>"` for every key of the grant,
 *   so the test sees, per key, the grants in the order they happened.
 *
 * Waiter `w` (0-based) takes, in round `r`, the key set `keySets[(w + r) % keySets.length]`.
 *
 * With `alternate` (one waiter per process, argv[3] the process's index), a process that released
 * waits until another process got the lock before it asks again: every hand-over then rests on
 * one release waking a waiter of another process, with nobody else around to cover a lost
 * wake-up. A process that finished lets the others stop waiting for it.
 *
 * argv[2]: JSON `LoopConfig` (protocol.ts). Sends `{ type: 'ready' }`, waits for
 * `{ type: 'go' }` (so all processes start together), then sends a `LoopReport`.
 */
import { Redis } from 'ioredis';
import { RedisLockClient } from '../../../lib/core/redis-lock.client.js';
import { nextParentMessage, sendToParent } from '../../support/worker-ipc.js';
import { grantEntry, type LoopConfig, type LoopDone } from './protocol.js';

const config = JSON.parse(process.argv[2]) as LoopConfig;
const self = Number(process.argv[3] ?? 0);
const redis = new Redis(config.url);
const observer = new Redis(config.url);
/** For BLPOP, which blocks its connection. */
const turns = new Redis(config.url);
const turnList = (index: number) => `${config.prefix}turn:${index}`;
const others = Array.from({ length: config.alternate?.processes ?? 0 }, (_, i) => i).filter(
  (i) => i !== self,
);
const warnings: string[] = [];
const locks = new RedisLockClient({
  redis,
  fairQueueTimeout: config.fairQueueTimeout,
  logger: { warn: (m) => void warnings.push(m) },
});
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

let maxInside = 0;
let failedReleases = 0;
let grants = 0;

async function waiter(index: number): Promise<void> {
  for (let round = 0; round < config.grants; round++) {
    const keys = config.keySets[(index + round) % config.keySets.length];
    const lock = await locks.acquire(keys, {
      ttl: config.ttl,
      waitTimeout: config.waitTimeout,
      fair: config.fair,
    });
    const at = nowMs();
    const enter = observer.pipeline();
    for (const key of lock.keys) enter.incr(`${config.prefix}inside:${key}`);
    if (config.alternate) {
      // Our turn came: the others may ask again. Tokens for us before now are stale.
      enter.del(turnList(self));
      for (const other of others) enter.lpush(turnList(other), '1').ltrim(turnList(other), 0, 0);
    }
    const entered = (await enter.exec())!.slice(0, lock.keys.length);
    for (const [, inside] of entered) maxInside = Math.max(maxInside, Number(inside));
    const leave = observer.pipeline();
    const entry = grantEntry(lock.fencingToken, at, process.pid);
    for (const key of lock.keys) leave.rpush(`${config.prefix}grants:${key}`, entry);
    for (const key of lock.keys) leave.decr(`${config.prefix}inside:${key}`);
    await leave.exec();
    if (!(await lock.release())) failedReleases++;
    grants++;
    const last = round === config.grants - 1;
    if (config.alternate && !last && Number(await observer.get(`${config.prefix}active`)) > 1) {
      await turns.blpop(turnList(self), 0);
    }
  }
  if (config.alternate) {
    await observer.decr(`${config.prefix}active`);
    for (const other of others) await observer.lpush(turnList(other), '1');
  }
}

try {
  await Promise.all([redis.ping(), observer.ping(), turns.ping()]);
  const go = nextParentMessage((m: { type: string }) => m.type === 'go');
  await sendToParent({ type: 'ready' });
  await go;
  await Promise.all(Array.from({ length: config.waiters }, (_, i) => waiter(i)));
  const done: LoopDone = {
    type: 'done',
    pid: process.pid,
    grants,
    maxInside,
    failedReleases,
    warnings,
  };
  await sendToParent(done);
} catch (error) {
  await sendToParent({
    type: 'error',
    message: error instanceof Error ? error.stack : String(error),
  });
} finally {
  await locks.close();
  redis.disconnect();
  observer.disconnect();
  turns.disconnect();
}
process.exit(0);
