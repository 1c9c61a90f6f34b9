import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { startCluster, stopAllClusters, type RedisCluster } from '../support/redis-cluster.js';
import { stopAllRedis } from '../support/redis-server.js';

/** Resolves with 'connected' or the socket error code (e.g. 'ECONNREFUSED'). */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

type SlotsReply = [number, number, ...[string, number][]][];

// Hash tags pin each key to the slot of its tag; these six land on all three masters.
const KEYS = ['{a}:lock', '{b}:lock', '{c}:lock', '{d}:lock', '{e}:lock', '{f}:lock'];

describe('test harness: Redis Cluster', () => {
  let cluster: RedisCluster;
  let withReplicas: RedisCluster;

  beforeAll(async () => {
    // In parallel: most of a cluster's start-up is Redis's fixed 2 s delay before it turns ok.
    [cluster, withReplicas] = await Promise.all([
      startCluster({ masters: 3 }),
      startCluster({ masters: 3, replicasPerMaster: 1 }),
    ]);
  });

  afterAll(async () => {
    await stopAllClusters();
    await stopAllRedis();
  });

  it('starts three masters sharing all slots, each with its nodes.conf in its own directory', async () => {
    expect(cluster.nodes).toHaveLength(3);
    expect(cluster.masters).toEqual(cluster.nodes);
    expect(cluster.replicas).toEqual([]);
    expect(cluster.startupNodes.map((node) => node.port)).not.toContain(6379);
    for (const node of cluster.nodes) {
      expect(existsSync(join(node.dir, 'nodes.conf'))).toBe(true);
      const info = String(await node.client().call('CLUSTER', 'INFO'));
      expect(info).toMatch(/cluster_state:ok/);
      expect(info).toMatch(/cluster_slots_assigned:16384/);
      expect(info).toMatch(/cluster_size:3/);
    }
  });

  it('routes a Cluster client to the master masterForKey names', async () => {
    const client = cluster.client();
    for (const key of KEYS) await client.set(key, 'token');

    const owners = await Promise.all(KEYS.map((key) => cluster.masterForKey(key)));
    expect(new Set(owners.map((owner) => owner.port)).size).toBe(3);
    for (const [i, key] of KEYS.entries()) {
      // A plain connection reads the key only on its owner; the others redirect with MOVED.
      for (const node of cluster.masters) {
        const exists = node.client().exists(key);
        if (node === owners[i]) await expect(exists).resolves.toBe(1);
        else await expect(exists).rejects.toThrow(/^MOVED /);
      }
    }
  });

  it('starts replicas that the cluster lists with their masters and that receive writes', async () => {
    expect(withReplicas.nodes).toHaveLength(6);
    const slots = (await withReplicas.masters[0].client().call('CLUSTER', 'SLOTS')) as SlotsReply;
    const [, , ...holders] = slots.find(([start]) => start === 0) ?? [0, 0];
    expect(holders.map(([, port]) => port)).toEqual([
      withReplicas.masters[0].port,
      withReplicas.replicas[0].port,
    ]);

    await withReplicas.client().set('{a}:replicated', 'v');
    const owner = await withReplicas.masterForKey('{a}:replicated');
    const replica = withReplicas.replicas[withReplicas.masters.indexOf(owner)];
    // WAIT: the write has reached the replica before it is read there.
    await expect(owner.client().call('WAIT', 1, 2000)).resolves.toBe(1);
    const reader = replica.client();
    await reader.call('READONLY');
    await expect(reader.get('{a}:replicated')).resolves.toBe('v');
  });

  it('stop ends every node, closes its clients and removes the directories', async () => {
    const client = withReplicas.client();
    await client.set('k', 'v');

    await withReplicas.stop();

    expect(client.nodes()).toEqual([]);
    for (const node of withReplicas.nodes) {
      expect(isAlive(node.pid)).toBe(false);
      expect(existsSync(node.dir)).toBe(false);
      await expect(tryConnect(node.port)).resolves.toBe('ECONNREFUSED');
    }
    await expect(withReplicas.stop()).resolves.toBeUndefined();
  });
});
