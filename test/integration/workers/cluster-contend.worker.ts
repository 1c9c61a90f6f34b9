/**
 * Several waiters of one process take locks on a Redis Cluster in a loop, as hard as they can.
 * Each waiter has its own ioredis `Cluster` and `RedisLockClient` (built here from the startup
 * nodes: a Cluster client cannot cross a process boundary), so every waiter contends in Redis and
 * is woken through its own sharded subscriber. Waiter `w` takes, in round `r`,
 * `keys[(w + r) % keys.length]`.
 *
 * Inside each critical section, through a separate `Cluster` connection of the process:
 * - `INCR <prefix>inside:{KEY}` must answer 1 (nobody else holds KEY), then `DECR` on the way out;
 * - `RPUSH <prefix>grants:{KEY} "<fencing token> <pid>"`, so the test sees the grants of KEY in
 *   the order they happened.
 * Both names carry KEY as hash tag, like the lock key `lock:{KEY}`: same slot, same master.
 *
 * argv[2]: JSON `ClusterLoopConfig` (cluster-protocol.ts). Sends `{ type: 'ready' }`, waits for
 * `{ type: 'go' }` (so all processes start together), then a `ClusterLoopReport`.
 */
import { Cluster } from 'ioredis';
import { RedisLockClient } from '../../../lib/core/redis-lock.client.js';
import { nextParentMessage, sendToParent } from '../../support/worker-ipc.js';
import type { ClusterLoopConfig, ClusterLoopDone } from './cluster-protocol.js';

const config = JSON.parse(process.argv[2]) as ClusterLoopConfig;
const connect = (): Cluster => {
  const cluster = new Cluster(config.startupNodes, { redisOptions: { disconnectTimeout: 100 } });
  cluster.on('error', () => undefined);
  return cluster;
};
const observer = connect();
const connections = Array.from({ length: config.waiters }, connect);
const warnings: string[] = [];
const lockClients = connections.map(
  (redis) => new RedisLockClient({ redis, logger: { warn: (m) => void warnings.push(m) } }),
);
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

let maxInside = 0;
let failedReleases = 0;
let grants = 0;
let maxWait = 0;

async function waiter(index: number): Promise<void> {
  const locks = lockClients[index];
  for (let round = 0; round < config.grants; round++) {
    const key = config.keys[(index + round) % config.keys.length];
    const asked = nowMs();
    const lock = await locks.acquire(key, { ttl: config.ttl, waitTimeout: config.waitTimeout });
    maxWait = Math.max(maxWait, nowMs() - asked);
    const inside = `${config.prefix}inside:{${key}}`;
    const [[, entered]] = (await observer
      .pipeline()
      .incr(inside)
      .rpush(`${config.prefix}grants:{${key}}`, `${lock.fencingToken} ${process.pid}`)
      .exec())!;
    maxInside = Math.max(maxInside, Number(entered));
    await observer.decr(inside);
    if (!(await lock.release())) failedReleases++;
    grants++;
  }
}

try {
  await Promise.all([observer, ...connections].map((cluster) => cluster.ping()));
  const go = nextParentMessage((m: { type: string }) => m.type === 'go');
  await sendToParent({ type: 'ready' });
  await go;
  await Promise.all(lockClients.map((_, i) => waiter(i)));
  const done: ClusterLoopDone = {
    type: 'done',
    pid: process.pid,
    grants,
    maxInside,
    failedReleases,
    maxWait,
    warnings,
  };
  await sendToParent(done);
} catch (error) {
  await sendToParent({
    type: 'error',
    message: error instanceof Error ? error.stack : String(error),
  });
} finally {
  await Promise.all(lockClients.map((locks) => locks.close()));
  for (const cluster of [observer, ...connections]) cluster.disconnect();
}
process.exit(0);
