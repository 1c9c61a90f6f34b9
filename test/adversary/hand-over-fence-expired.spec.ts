/**
 * Adversary probe: a key's fencing counter expires FENCE_RETENTION after it was *created*, not
 * after its last grant (INCRBY keeps the counter's TTL, whatever redis-lock.constants.ts says).
 * ACQUIRE_FAIR's hand-over branch answers the counter's value with GET: when the counter expires
 * between a hand-over and the waiter taking it up, the script has already PEXPIREd the key to the
 * waiter's ttl and answers nil, which `RedisStore.acquire` reads as a queued reply (`r[1]` of
 * null): the waiter whose turn it was fails with LockUnavailableError ("Redis is unavailable"),
 * though Redis answered and handed it the lock.
 */
import type { Redis } from 'ioredis';
import { FENCE_RETENTION } from '../../lib/redis-lock.constants.js';
import { killAllWorkers } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { fairQueue, LockAgent, LockClients, uniqueKey } from '../integration/helpers.js';

describe('adversary: a hand-over taken up after the fencing counter expired', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(async () => {
    await killAllWorkers();
    await clients.closeAll();
  });
  afterAll(async () => {
    await killAllWorkers();
    await stopAllRedis();
  });

  it('the counter outlives a later grant by FENCE_RETENTION (as documented)', async () => {
    const key = uniqueKey('fence-retention');
    const locks = clients.create(redis.client());
    await (await locks.acquire(key, { ttl: 1_000 })).release();
    // Half an hour later, in effect: the counter has half its retention left.
    await admin.pexpire(`lock:{${key}}:fence`, FENCE_RETENTION / 2);
    await (await locks.acquire(key, { ttl: 1_000 })).release();
    expect(await admin.pttl(`lock:{${key}}:fence`)).toBeGreaterThan(FENCE_RETENTION - 60_000);
  });

  it('the waiter is granted the lock it was handed, with a fencing token above the last', async () => {
    const key = uniqueKey('fence-gone');
    const lockKey = `lock:{${key}}`;
    const releaser = clients.create(redis.client(), { fair: true });
    const holder = await releaser.acquire(key, { ttl: 30_000 });
    const agent = await LockAgent.start(redis.url, { fair: true });
    agent.send({ type: 'acquire', id: 'w', key, options: { ttl: 30_000, waitTimeout: 20_000 } });
    await waitFor(async () => (await fairQueue(admin, key)).length === 1, {
      interval: 5,
      message: 'the agent to queue',
    });
    // Freeze the agent so the hand-over and the counter's expiry both happen before it reads them.
    const marker = uniqueKey('blocked');
    agent.send({ type: 'block', id: 'block', ms: 800, marker });
    await waitFor(async () => (await admin.exists(marker)) === 1, { interval: 2 });

    await holder.release(); // hands the key to the agent; INCRBY keeps the counter's old TTL
    // The counter reaches the end of its retention (created an hour ago, say).
    await admin.pexpire(`${lockKey}:fence`, 1);
    await agent.reply('block', ['blocked']);

    const reply = await agent.reply('w', ['granted', 'failed'], 15_000);
    // Today: { type: 'failed', error: LockUnavailableError "Redis is unavailable ... Cannot read
    // properties of null (reading '1')" }: the waiter whose turn it was fails with a 503, and its
    // LEAVE_QUEUE hands the key on.
    expect(reply).toEqual(expect.objectContaining({ type: 'granted', held: true, owns: true }));
    if (reply.type === 'granted') {
      expect(BigInt(reply.fencingToken)).toBeGreaterThan(holder.fencingToken);
    }
  });
});
