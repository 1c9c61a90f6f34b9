import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { stopAllRedis } from '../support/redis-server.js';
import {
  startSentinelGroup,
  stopAllSentinelGroups,
  type SentinelGroup,
} from '../support/redis-sentinel.js';
import { stopAllSentinelProcesses } from '../support/sentinel-process.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('test harness: Redis Sentinel', () => {
  let group: SentinelGroup;

  beforeAll(async () => {
    group = await startSentinelGroup({ replicas: 1, sentinels: 3 });
  });

  afterAll(async () => {
    await stopAllSentinelGroups();
    await stopAllSentinelProcesses();
    await stopAllRedis();
  });

  it('starts a master with a synced replica, watched by three Sentinels with their own config', async () => {
    expect(group.replicas).toHaveLength(1);
    expect(group.sentinels).toHaveLength(3);
    expect(group.sentinelAddresses.map((address) => address.port)).not.toContain(6379);
    await expect(group.currentMaster()).resolves.toEqual({
      host: '127.0.0.1',
      port: group.master.port,
    });
    const replication = String(await group.replicas[0].client().call('INFO', 'replication'));
    expect(replication).toMatch(/master_link_status:up/);
    for (const sentinel of group.sentinels) {
      expect(existsSync(join(sentinel.dir, 'sentinel.conf'))).toBe(true);
    }
  });

  it('fails over to the replica when the master is killed, and the client follows', async () => {
    const client = group.client();
    await client.set('before', '1');
    // WAIT: the write reached the replica, so the failover cannot lose it.
    await expect(client.call('WAIT', 1, 2000)).resolves.toBe(1);

    group.master.kill('SIGKILL');
    await group.master.exited;
    const promoted = await group.waitForFailover(group.master.port, 15_000);

    expect(promoted).toBe(group.replicas[0]);
    await expect(group.currentMaster()).resolves.toEqual({
      host: '127.0.0.1',
      port: promoted.port,
    });
    // ioredis asks the Sentinels again on reconnect and lands on the promoted replica.
    await client.set('after', '2');
    await expect(promoted.client().mget('before', 'after')).resolves.toEqual(['1', '2']);
  });

  it('stop ends every Sentinel and server and removes their directories', async () => {
    const client = group.client();
    await group.stop();

    expect(client.status).toBe('end');
    for (const one of [...group.sentinels, group.master, ...group.replicas]) {
      expect(isAlive(one.pid)).toBe(false);
      expect(existsSync(one.dir)).toBe(false);
    }
    await expect(group.stop()).resolves.toBeUndefined();
  });
});
