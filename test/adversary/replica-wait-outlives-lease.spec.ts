/**
 * Adversary probe: with `waitForReplicas`, the WAIT after a grant is bounded by its own timeout,
 * not by the grant's lease. When the replicas acknowledge only after the lease ran out (a replica
 * stalled for longer than the ttl, then back within the WAIT timeout), `acquire` resolves with a
 * handle that is already lost, and `run()` runs its callback while Redis holds the key for
 * another owner.
 */
import type { Redis } from 'ioredis';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { LockClients, uniqueKey } from '../integration/helpers.js';

describe('adversary: waitForReplicas acknowledged after the lease ran out', () => {
  let master: RedisServer;
  let replica: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    master = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
    replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    admin = master.client();
    const replicaAdmin = replica.client();
    await waitFor(
      async () => (await replicaAdmin.info('replication')).includes('master_link_status:up'),
      { message: 'the replica to sync' },
    );
  });
  afterEach(async () => {
    await replica.resume();
    await clients.closeAll();
  });
  afterAll(() => stopAllRedis());

  it('never runs a callback on a grant whose lease ran out while WAIT was pending', async () => {
    const key = uniqueKey('late-ack');
    const redisKey = `lock:{${key}}`;
    const replicated = clients.create(master.client(), {
      waitForReplicas: { replicas: 1, timeout: 5_000 },
    });
    const other = clients.create(master.client());
    await replica.pause();

    // What Redis held for the key when the callback started, if it ever did.
    let seenAtStart: string | null | undefined;
    let heldAtStart: boolean | undefined;
    let token: string | undefined;
    const running = replicated
      .run(
        key,
        async (lock) => {
          heldAtStart = lock.isHeld();
          token = lock.token;
          seenAtStart = await admin.get(redisKey);
        },
        { ttl: 400 },
      )
      .catch((err: unknown) => err);

    // The grant's key expires in the master while the replica is stalled; another owner takes it.
    await waitFor(async () => (await admin.exists(redisKey)) === 1, { message: 'the grant' });
    await waitFor(async () => (await admin.exists(redisKey)) === 0, {
      message: 'the grant to expire',
    });
    const theirs = await other.tryAcquire(key, { ttl: 30_000 });
    expect(theirs).not.toBeNull();
    await replica.resume(); // the replica now acknowledges, within WAIT's 5 s

    await running;
    // Either the acquire failed, or the callback ran holding the lock. It must not run while
    // Redis holds the other owner's token.
    if (heldAtStart !== undefined) {
      expect({ heldAtStart, ownsInRedis: seenAtStart === token }).toEqual({
        heldAtStart: true,
        ownsInRedis: true,
      });
    }
    expect(seenAtStart).not.toBe(theirs!.token);
    await theirs!.release();
  });
});
