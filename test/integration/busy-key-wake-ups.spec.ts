/**
 * A waiter sleeps until the key it found busy is released (or its lease runs out): neither its
 * own releases (a Cluster lock over several slots gives back the slots it took when a later one
 * is busy) nor releases of keys it does not wait for wake it. Counted in lock scripts on the
 * servers (INFO commandstats), on a Cluster and on one Redis.
 */
import type { Redis } from 'ioredis';
import type { RedisLockClientOptions } from '../../lib/core/redis-lock-client.options.js';
import { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import { startCluster, stopAllClusters, type RedisCluster } from '../support/redis-cluster.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { commandCalls, fairQueue, subscribed, uniqueKey } from './helpers.js';

/** Far longer than any wait here: no waiter's own lease re-check can end its sleep. */
const LONG_TTL = 30_000;
/** How long the busy key is held while the waiter waits. */
const HOLD_MS = 300;
/** Times a bystander takes and releases each free key while the waiter waits. */
const BYSTANDER_ROUNDS = 10;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** EVAL + EVALSHA run so far on the given servers together. */
async function scriptCalls(admins: Redis[]): Promise<number> {
  let calls = 0;
  for (const admin of admins) {
    calls += (await commandCalls(admin, 'evalsha')) + (await commandCalls(admin, 'eval'));
  }
  return calls;
}

/**
 * While a waiter for `[...free, busy]` waits, a bystander takes and releases each free key
 * BYSTANDER_ROUNDS times over about HOLD_MS, then the holder releases `busy`. Returns how many
 * lock scripts the waiter ran from its first attempt to its grant, and whether the bystander got
 * every free key every time.
 */
async function waitOnBusyKey(
  newLocks: () => RedisLockClient,
  admins: Redis[],
  free: string[],
  busy: string,
  /** Resolves once the waiter made its attempts and sleeps (given the script count before). */
  waiterAsleep: (scriptsBefore: number) => Promise<void>,
): Promise<{ waiterScripts: number; bystanderGotAll: boolean }> {
  const [holder, waiter, bystander] = [newLocks(), newLocks(), newLocks()];
  // Loads every script on every server first: a NOSCRIPT retry would count twice.
  await (await bystander.acquire([...free, busy])).release();
  for (const key of [...free, busy]) {
    await (await bystander.acquire(key, { fair: true, waitTimeout: 1_000 })).release();
  }
  const held = await holder.acquire(busy, { ttl: LONG_TTL });
  const before = await scriptCalls(admins);

  const waiting = waiter.acquire([...free, busy], { ttl: LONG_TTL, waitTimeout: 10_000 });
  await waiterAsleep(before);
  let bystanderGotAll = true;
  for (let round = 0; round < BYSTANDER_ROUNDS; round++) {
    for (const key of free) {
      const lock = await bystander.tryAcquire(key, { ttl: LONG_TTL });
      if (lock) await lock.release();
      else bystanderGotAll = false;
    }
    await pause(HOLD_MS / BYSTANDER_ROUNDS);
  }
  await held.release();
  const taken = await waiting;
  const after = await scriptCalls(admins);
  await taken.release();
  // Each bystander round ran a tryAcquire and a release per free key; the holder one release.
  const others = 2 * BYSTANDER_ROUNDS * free.length + 1;
  return { waiterScripts: after - before - others, bystanderGotAll };
}

describe('a waiter wakes only for the release of the key it found busy', () => {
  const lockClients: RedisLockClient[] = [];
  const make = (redis: RedisLockClientOptions['redis']) => {
    const locks = new RedisLockClient({ logger: { warn: () => undefined }, redis });
    lockClients.push(locks);
    return locks;
  };

  afterEach(async () => {
    await Promise.all(lockClients.splice(0).map((locks) => locks.close().catch(() => undefined)));
  });
  afterAll(async () => {
    await stopAllClusters();
    await stopAllRedis();
  });

  describe('Redis Cluster, keys of three slots', () => {
    let cluster: RedisCluster;
    let admins: Redis[];

    beforeAll(async () => {
      cluster = await startCluster({ masters: 3 });
      admins = cluster.masters.map((node) => node.client());
    });

    it('sleeps through its own give-backs and others taking the free keys: a handful of scripts, and the keys it took first stay free', async () => {
      const byMaster = new Map<number, string>();
      while (byMaster.size < 3) {
        const key = uniqueKey('slots');
        const owner = await cluster.masterForKey(`lock:{${key}}`);
        if (!byMaster.has(owner.port)) byMaster.set(owner.port, key);
      }
      // Slots are taken in key order: the busy key last, so the waiter takes two first.
      const [a, b, c] = [...byMaster.values()].sort();
      const cOwner = (await cluster.masterForKey(`lock:{${c}}`)).client();

      const { waiterScripts, bystanderGotAll } = await waitOnBusyKey(
        () => make(cluster.client()),
        admins,
        [a, b],
        c,
        async (scriptsBefore) => {
          await waitFor(
            async () =>
              Number(
                (
                  (await cOwner.call('PUBSUB', 'SHARDNUMSUB', `lock:{${c}}:released`)) as [
                    string,
                    number,
                  ]
                )[1],
              ) === 1,
            { interval: 5, message: 'the waiter to listen on the busy key' },
          );
          // Its first attempt, and the one after subscribing (5 scripts each), are done.
          await waitFor(async () => (await scriptCalls(admins)) >= scriptsBefore + 10, {
            interval: 5,
            message: 'the waiter to make its two attempts',
          });
        },
      );
      // Two refused attempts (each: a and b taken, c refused, a and b given back: 5 scripts),
      // then the grant (3 acquires, 3 fence raises): 16, however long the wait.
      expect(waiterScripts).toBeLessThanOrEqual(16);
      expect(bystanderGotAll).toBe(true);
    });
  });

  describe('one Redis', () => {
    let server: RedisServer;

    beforeAll(async () => {
      server = await startRedis();
    });

    it('sleeps through releases of the keys it did not find busy: a handful of scripts', async () => {
      const base = uniqueKey('single');
      const [a, b, c] = ['a', 'b', 'c'].map((suffix) => `${base}:${suffix}`);
      const admin = server.client();

      const { waiterScripts, bystanderGotAll } = await waitOnBusyKey(
        () => make(server.client()),
        [admin],
        [a, b],
        c,
        // The first waiter of its process queues in Redis (for every key), told on its client's
        // channel.
        async () => {
          await subscribed(admin, c);
          await waitFor(async () => (await fairQueue(admin, a)).length === 1, {
            interval: 5,
            message: 'the waiter to queue',
          });
        },
      );
      // The first attempt, the attempt that queues it, the grant after the hand-over: 3, and
      // none for the 2 x BYSTANDER_ROUNDS releases of a and b, which each tell it as the first
      // waiter queued for them.
      expect(waiterScripts).toBeLessThanOrEqual(3);
      expect(bystanderGotAll).toBe(true);
    });
  });
});
