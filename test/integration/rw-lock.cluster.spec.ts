/* Read-write locks on a Redis Cluster: every key of one lock in its slot, wake-ups by SPUBLISH. */
import type { Redis } from 'ioredis';
import { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import { startCluster, stopAllClusters, type RedisCluster } from '../support/redis-cluster.js';
import { waitFor } from '../support/wait-for.js';
import { uniqueKey } from './helpers.js';

describe('Read-write locks on a Redis Cluster', () => {
  let cluster: RedisCluster;
  const clients: RedisLockClient[] = [];
  const newLocks = () => {
    const locks = new RedisLockClient({
      logger: { warn: () => undefined },
      redis: cluster.client(),
    });
    clients.push(locks);
    return locks;
  };
  let owner: (redisKey: string) => Promise<Redis>;

  beforeAll(async () => {
    cluster = await startCluster();
    owner = async (redisKey) => (await cluster.masterForKey(redisKey)).client();
  }, 60_000);
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(() => stopAllClusters());

  it('shares the read lock, excludes a writer, and wakes a waiting reader through its shard', async () => {
    const key = uniqueKey('rw-cluster');
    const node = await owner(`lock:{${key}}`);
    const r1 = await newLocks().acquire(key, { mode: 'read' });
    const r2 = await newLocks().acquire(key, { mode: 'read' });
    await expect(newLocks().tryAcquire(key, { mode: 'write' })).resolves.toBeNull();
    const writing = newLocks().acquire(key, { mode: 'write', waitTimeout: 20_000 });
    await waitFor(async () => (await node.zcard(`lock:{${key}}:rw-writers`)) === 1);
    await Promise.all([r1.release(), r2.release()]);
    const writer = await writing;
    const reading = newLocks().acquire(key, {
      mode: 'read',
      waitTimeout: 20_000,
      retry: () => null,
    });
    const channel = `lock:{${key}}:released`;
    await waitFor(
      async () =>
        Number(((await node.call('PUBSUB', 'SHARDNUMSUB', channel)) as unknown[])[1]) === 1,
    );
    await writer.release();
    const reader = await reading;
    expect(reader.fencingToken).toBe(writer.fencingToken);
    await reader.release();
    expect(await node.exists(`lock:{${key}}`)).toBe(0);
  });
});
