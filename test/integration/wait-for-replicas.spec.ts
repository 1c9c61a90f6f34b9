/**
 * `waitForReplicas` on a plain master + replica (no Sentinel): a grant is returned only once the
 * replica acknowledged it; too few acknowledgements release it and fail the acquire.
 */
import type { Redis } from 'ioredis';
import { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import { LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { LockClients, rejectionOf, uniqueKey } from './helpers.js';

describe('waitForReplicas', () => {
  let master: RedisServer;
  let replica: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    // No 5 s wait before the first full sync to the replica.
    master = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
    replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    admin = master.client();
    const replicaAdmin = replica.client();
    await waitFor(
      async () => (await replicaAdmin.info('replication')).includes('master_link_status:up'),
      {
        message: 'the replica to sync',
      },
    );
  });
  afterEach(async () => {
    await replica.resume();
    await clients.closeAll();
  });
  afterAll(() => stopAllRedis());

  it('returns a grant the replica already has', async () => {
    const locks = clients.create(master.client(), {
      waitForReplicas: { replicas: 1, timeout: 1000 },
    });
    const key = uniqueKey('replicated');
    const lock = await locks.acquire(key);
    // No polling: WAIT returned only after the replica acknowledged the write.
    await expect(replica.client().get(`lock:{${key}}`)).resolves.toBe(lock.token);
    await lock.release();
  });

  it('releases the lock and fails with LockUnavailableError when too few replicas acknowledge', async () => {
    const locks = clients.create(master.client(), {
      waitForReplicas: { replicas: 1, timeout: 150 },
    });
    const key = uniqueKey('frozen-replica');
    await replica.pause();
    const { error, ms } = await rejectionOf(locks.acquire(key));
    expect(error).toBeInstanceOf(LockUnavailableError);
    expect(error.message).toContain('only 0 of the 1 replica(s) required by waitForReplicas');
    expect(ms).toBeGreaterThanOrEqual(140);
    expect(ms).toBeLessThan(1500);
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
    // More replicas than exist can never be satisfied.
    await replica.resume();
    const greedy = clients.create(master.client(), {
      waitForReplicas: { replicas: 2, timeout: 100 },
    });
    await expect(greedy.tryAcquire(key)).rejects.toBeInstanceOf(LockUnavailableError);
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
  });

  it('rejects invalid settings when the client is created', () => {
    const redis = master.client();
    for (const waitForReplicas of [
      { replicas: 0, timeout: 10 },
      { replicas: 1.5, timeout: 10 },
      { replicas: 1, timeout: 0 },
    ]) {
      expect(() => new RedisLockClient({ redis, waitForReplicas })).toThrow(/waitForReplicas/);
    }
  });
});
