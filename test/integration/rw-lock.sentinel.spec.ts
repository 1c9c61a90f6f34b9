/* Read-write locks through Sentinel: the client finds the master, the scripts run there. */
import {
  startSentinelGroup,
  stopAllSentinelGroups,
  type SentinelGroup,
} from '../support/redis-sentinel.js';
import { stopAllSentinelProcesses } from '../support/sentinel-process.js';
import { stopAllRedis } from '../support/redis-server.js';
import { LockClients, uniqueKey } from './helpers.js';

describe('Read-write locks through Sentinel', () => {
  const clients = new LockClients();
  let group: SentinelGroup;

  beforeAll(async () => {
    group = await startSentinelGroup({ replicas: 1, sentinels: 3 });
  }, 60_000);
  afterEach(() => clients.closeAll());
  afterAll(async () => {
    await stopAllSentinelGroups();
    await stopAllSentinelProcesses();
    await stopAllRedis();
  });

  it('shares the read lock and excludes a writer, on the master the Sentinels name', async () => {
    const key = uniqueKey('rw-sentinel');
    const reader = await clients.create(group.client()).acquire(key, { mode: 'read' });
    const other = await clients.create(group.client()).tryAcquire(key, { mode: 'read' });
    expect(other).not.toBeNull();
    await expect(
      clients.create(group.client()).tryAcquire(key, { mode: 'write' }),
    ).resolves.toBeNull();
    expect(await group.master.client().zcard(`lock:{${key}}`)).toBe(2);
    await Promise.all([reader.release(), other!.release()]);
    await expect(
      clients.create(group.client()).tryAcquire(key, { mode: 'write' }),
    ).resolves.not.toBeNull();
  });
});
