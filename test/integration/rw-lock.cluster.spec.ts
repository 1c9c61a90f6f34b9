/* Read-write locks on a Redis Cluster: every key of one lock in its slot, wake-ups by SPUBLISH. */
import type { Redis } from 'ioredis';
import { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import { startCluster, stopAllClusters, type RedisCluster } from '../support/redis-cluster.js';
import { waitFor } from '../support/wait-for.js';
import { commandCalls, uniqueKey } from './helpers.js';

describe('Read-write locks on a Redis Cluster', () => {
  let cluster: RedisCluster;
  const clients: RedisLockClient[] = [];
  // A fair waiter refreshes its place every third of fairQueueTimeout: long here, so a waiter
  // granted within its wait was woken, not refreshing.
  const newLocks = () => {
    const locks = new RedisLockClient({
      logger: { warn: () => undefined },
      redis: cluster.client(),
      fairQueueTimeout: 90_000,
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
    // Refused twice (its first attempt, then the one after it subscribed): from then on only a
    // wake-up (SPUBLISH in the key's shard) brings it the lock before its wait ends, as its
    // place is refreshed every 30 s and the writer's lease is 30 s.
    const before = await commandCalls(node, 'evalsha');
    const reading = newLocks().acquire(key, { mode: 'read', fair: true, waitTimeout: 20_000 });
    await waitFor(async () => (await commandCalls(node, 'evalsha')) >= before + 2);
    expect(await node.zcard(`lock:{${key}}:rw-queue`)).toBe(1);
    let woken = false;
    void reading.then(() => (woken = true)).catch(() => undefined);
    await writer.release();
    // Well before its wait ends, where a last attempt would find the lock free anyway.
    await waitFor(() => woken, { timeout: 10_000, message: 'the waiting reader to be woken' });
    const reader = await reading;
    expect(reader.fencingToken).toBe(writer.fencingToken);
    await reader.release();
    expect(await node.exists(`lock:{${key}}`)).toBe(0);
  });
});
