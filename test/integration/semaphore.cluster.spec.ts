/**
 * Semaphores on a Redis Cluster: the holders key and its channel share one slot (one script), and
 * a release wakes a waiter of another client through sharded pub/sub (SPUBLISH).
 */
import { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import { startCluster, stopAllClusters, type RedisCluster } from '../support/redis-cluster.js';
import { waitFor } from '../support/wait-for.js';

describe('semaphores on a Redis Cluster', () => {
  let cluster: RedisCluster;
  const clients: RedisLockClient[] = [];
  const newClient = () => {
    const client = new RedisLockClient({
      redis: cluster.client(),
      logger: { warn: () => undefined },
    });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    cluster = await startCluster();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await stopAllClusters();
  });

  it.each(['payments', '{tenant-7}:exports'])(
    'grants at most N permits of %p and wakes a waiter on release',
    async (key) => {
      const a = newClient();
      const b = newClient();
      const held = [
        await a.acquirePermit(key, { permits: 2, ttl: 60_000 }),
        await a.acquirePermit(key, { permits: 2, ttl: 60_000 }),
      ];
      expect(await b.tryAcquirePermit(key, { permits: 2 })).toBeNull();
      // The leases (60 s) outlast the wait (20 s): only the release's message lets it in.
      const waiting = b.acquirePermit(key, { permits: 2, waitTimeout: 20_000 });
      const holders = held[0].redisKey;
      const owner = cluster.client();
      const channel = `${holders}:released`;
      await waitFor(
        async () => {
          const master = await cluster.masterForKey(holders);
          const node = master.client();
          const [, count] = (await node.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
          return Number(count) > 0;
        },
        { interval: 10, message: 'the waiter to listen on the shard channel' },
      );
      await held[0].release();
      const permit = await waiting;
      expect(permit.isHeld()).toBe(true);
      expect(await owner.pttl(holders)).toBeGreaterThan(0);
      await Promise.all([permit.release(), held[1].release()]);
      expect(await owner.exists(holders)).toBe(0);
    },
    60_000,
  );
});
