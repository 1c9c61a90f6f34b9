import type { Redis } from 'ioredis';
import { killAllWorkers } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { LockAgent, LockClients, processState, runContendLoop, uniqueKey } from './helpers.js';
import { fencedWrite, grantsOf, type LoopConfig } from './workers/protocol.js';
import { LOCK_BACKENDS, lockBackend } from './lock-backends.js';

/** Fails with the first place where `tokens` does not strictly increase. */
function expectStrictlyIncreasing(tokens: bigint[]): void {
  const drop = tokens.findIndex((token, i) => i > 0 && token <= tokens[i - 1]);
  if (drop !== -1) {
    throw new Error(
      `fencing token #${drop} (${tokens[drop]}) is not above #${drop - 1} (${tokens[drop - 1]})`,
    );
  }
}

/** Redis' clock in microseconds. */
async function redisMicros(redis: Redis): Promise<bigint> {
  const [seconds, micros] = await redis.time();
  return BigInt(seconds) * 1_000_000n + BigInt(micros);
}

describe('fencing tokens', () => {
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

  it('strictly increase over 3000 grants of one key to 3 processes x 2 waiters', async () => {
    const PROCESSES = 3;
    const WAITERS = 2;
    const GRANTS = 500;
    const key = uniqueKey('fence-stress');
    const config: LoopConfig = {
      url: redis.url,
      keySets: [[key]],
      waiters: WAITERS,
      grants: GRANTS,
      ttl: 30_000,
      waitTimeout: 60_000,
      prefix: `${key}:`,
    };
    const { reports: done } = await runContendLoop(config, PROCESSES, 40_000);
    expect(done.map((r) => r.grants)).toEqual(Array(PROCESSES).fill(WAITERS * GRANTS));
    expect(Math.max(...done.map((r) => r.maxInside))).toBe(1);

    // In the order the grants happened (logged from inside each critical section).
    const grants = await grantsOf(admin, config.prefix, key);
    expect(grants).toHaveLength(PROCESSES * WAITERS * GRANTS);
    expect(new Set(grants.map((g) => g.pid)).size).toBe(PROCESSES);
    const tokens = grants.map((g) => g.fencingToken);
    expectStrictlyIncreasing(tokens);
    expect(new Set(tokens).size).toBe(tokens.length);
  }, 60_000);

  it('a multi-key grant gets one token above the last token of every key it covers', async () => {
    const locks = clients.create(redis.client());
    const [a, b, c] = ['a', 'b', 'c'].map((label) => uniqueKey(`fence-multi-${label}`));
    const fence = (key: string) => `lock:{${key}}:fence`;
    for (const key of [a, b, c]) await (await locks.acquire(key)).release();

    // Push one counter far ahead of the others (and of Redis' clock): a counter already ahead
    // of the clock, as after many grants, whichever key of the set it belongs to.
    const ahead = (await redisMicros(admin)) + 10n ** 12n;
    for (const [high, other] of [
      [b, a],
      [a, c],
    ]) {
      await admin.set(fence(high), ahead.toString());
      const before = [BigInt((await admin.get(fence(other)))!), ahead];
      const both = await locks.acquire([other, high]);
      for (const previous of before) expect(both.fencingToken).toBeGreaterThan(previous);
      // Every key covered now carries that token: a later grant of either key alone is above it.
      for (const key of [other, high]) {
        await expect(admin.get(fence(key))).resolves.toBe(both.fencingToken.toString());
      }
      await both.release();
      for (const key of [other, high]) {
        const alone = await locks.acquire(key);
        expect(alone.fencingToken).toBeGreaterThan(both.fencingToken);
        await alone.release();
      }
    }
  });

  it('keep increasing after the counter is gone: deleted (as by expiry) or lost with a Redis restarted without persistence', async () => {
    const server = await startRedis();
    try {
      const lockRedis = server.client();
      const locks = clients.create(lockRedis);
      const key = uniqueKey('fence-restart');
      const fence = `lock:{${key}}:fence`;
      const tokens: bigint[] = [];
      const grant = async () => {
        const lock = await locks.acquire(key);
        tokens.push(lock.fencingToken);
        await lock.release();
      };
      for (let i = 0; i < 5; i++) await grant();
      // The counter is kept long after the last grant (an hour), not forever.
      const retention = await server.client().pttl(fence);
      expect(retention).toBeGreaterThan(3_500_000);

      await server.client().del(fence);
      await grant();
      for (let i = 0; i < 3; i++) await grant();

      await server.restart();
      await waitFor(() => lockRedis.status === 'ready', { message: 'the client to reconnect' });
      await expect(server.client().exists(fence)).resolves.toBe(0);
      await grant();
      await grant();

      expect(tokens).toHaveLength(11);
      expectStrictlyIncreasing(tokens);
    } finally {
      await server.stop();
    }
  });

  it("rejects a frozen holder's late write: the store keeps the write of the owner after it (SIGSTOP past the lease)", async () => {
    const ttl = 300;
    const key = uniqueKey('fence-frozen');
    const store = `${key}:store`;
    const agent = await LockAgent.start(redis.url);
    agent.send({ type: 'acquire', id: 'old', key, options: { ttl, autoRenew: false } });
    const old = await agent.reply('old', ['granted', 'failed']);
    expect(old.type).toBe('granted');

    // Frozen between taking the lock and writing (a GC pause, a stalled VM).
    agent.child.kill('SIGSTOP');
    await waitFor(() => processState(agent.pid) === 'T', { message: 'the holder to stop' });
    // Another client gets the lock once the frozen holder's lease ran out, and writes.
    const current = await clients
      .create(redis.client())
      .acquire(key, { ttl: 30_000, waitTimeout: 5000 });
    expect(processState(agent.pid)).toBe('T');
    const oldToken = BigInt((old as { fencingToken: string }).fencingToken);
    expect(current.fencingToken).toBeGreaterThan(oldToken);
    await expect(
      fencedWrite(admin, store, current.fencingToken, 'from the new owner'),
    ).resolves.toBe(true);

    // The old holder wakes up and writes as if it still held the lock.
    agent.child.kill('SIGCONT');
    agent.send({ type: 'write', id: 'old', store, value: 'from the frozen holder' });
    await expect(agent.reply('old', ['written', 'failed'])).resolves.toMatchObject({
      type: 'written',
      accepted: false,
      held: false,
    });
    await expect(admin.get(`${store}:value`)).resolves.toBe('from the new owner');
    await expect(admin.get(`${store}:token`)).resolves.toBe(current.fencingToken.toString());
    await current.release();
  });
});

describe.each(LOCK_BACKENDS)('fencing tokens on %s', (name) => {
  const backend = lockBackend(name);
  const fence = (key: string) => `lock:{${key}}:fence`;

  it('strictly increase over grants of one key to 3 clients x 2 waiters, and after the counter is deleted', async () => {
    const key = uniqueKey('fence-shared');
    const clients = [0, 1, 2].map(() => backend.client());
    const tokens: bigint[] = [];
    const waiter = async (locks: (typeof clients)[number]) => {
      for (let i = 0; i < 20; i++) {
        await locks.run(key, (lock) => void tokens.push(lock.fencingToken), {
          waitTimeout: 10_000,
        });
      }
    };
    await Promise.all(clients.flatMap((locks) => [waiter(locks), waiter(locks)]));
    // The counter is kept long after the last grant (an hour), not forever.
    expect(await backend.keys.pttl(fence(key))).toBeGreaterThan(3_500_000);
    await backend.keys.del(fence(key));
    const after = await clients[0].acquire(key);
    tokens.push(after.fencingToken);
    expect(tokens).toHaveLength(121);
    expectStrictlyIncreasing(tokens);
  });

  it('a multi-key grant gets one token above the last token of every key it covers', async () => {
    const locks = backend.client();
    const [a, b] = ['a', 'b'].map((label) => uniqueKey(`fence-shared-${label}`));
    for (const key of [a, b]) await (await locks.acquire(key)).release();
    // One counter far ahead of the other and of the clock.
    const ahead = BigInt(Date.now()) * 1000n + 10n ** 12n;
    await backend.keys.set(fence(b), ahead.toString());
    const below = BigInt((await backend.keys.get(fence(a)))!);
    const both = await locks.acquire([a, b]);
    expect(both.fencingToken).toBeGreaterThan(ahead);
    expect(both.fencingToken).toBeGreaterThan(below);
    for (const key of [a, b]) {
      await expect(backend.keys.get(fence(key))).resolves.toBe(both.fencingToken.toString());
    }
    await both.release();
    const alone = await locks.acquire(a);
    expect(alone.fencingToken).toBeGreaterThan(both.fencingToken);
  });
});
