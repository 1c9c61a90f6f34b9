import type { Redis } from 'ioredis';
import { hashSlot } from '../../lib/core/redis/cluster-slot.js';
import { waiterChannel } from '../../lib/core/keys/lock-token.js';
import type { RedisLockClientOptions } from '../../lib/core/redis-lock-client.options.js';
import { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { InvalidLockKeyError } from '../../lib/errors/lock.errors.js';
import { exited, forkWorker, killAllWorkers, nextMessage } from '../support/fork-worker.js';
import { startCluster, stopAllClusters, type RedisCluster } from '../support/redis-cluster.js';
import { stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { commandCalls, nowMs, rejectionOf, uniqueKey } from './helpers.js';
import type {
  ClusterLoopConfig,
  ClusterLoopDone,
  ClusterLoopReport,
} from './workers/cluster-protocol.js';

const LOOP_WORKER = 'test/integration/workers/cluster-contend.worker.ts';

/**
 * A lease far longer than any wait here: a waiter's own re-check when the lease it saw runs out
 * can never be what hands it the lock, so only a release message (or the retry right after
 * subscribing) can.
 */
const LONG_TTL = 30_000;
/** How fast a woken waiter must have the lock: far below LONG_TTL and any fair-queue refresh. */
const WAKE_UP_WITHIN = 2_000;

describe('Redis Cluster', () => {
  let cluster: RedisCluster;
  /** A plain connection to each node, by port: PUBSUB and commandstats are per node. */
  const admins = new Map<number, Redis>();
  const lockClients: RedisLockClient[] = [];

  const admin = (node: RedisServer): Redis => admins.get(node.port)!;
  /** A lock client on a Cluster client of its own (so its own sharded subscriber). */
  const newLocks = (options: Omit<RedisLockClientOptions, 'redis'> = {}): RedisLockClient => {
    const locks = new RedisLockClient({
      logger: { warn: () => undefined },
      ...options,
      redis: cluster.client(),
    });
    lockClients.push(locks);
    return locks;
  };
  /** A plain connection to the master that owns `redisKey`'s slot. */
  const ownerOf = async (redisKey: string) => admin(await cluster.masterForKey(redisKey));
  /**
   * Subscribers of a key's release channel, and of the waiters' own channels under it
   * (`<channel>:<token>`, where the first waiter of a process listens), sharded or classic.
   */
  const subscribersOf = async (node: Redis, channel: string, sharded: boolean): Promise<number> => {
    const [list, count] = sharded ? ['SHARDCHANNELS', 'SHARDNUMSUB'] : ['CHANNELS', 'NUMSUB'];
    const own = (await node.call('PUBSUB', list, `${channel}:*`)) as string[];
    const counts = (await node.call('PUBSUB', count, channel, ...own)) as (string | number)[];
    return counts.filter((_, i) => i % 2 === 1).reduce<number>((sum, n) => sum + Number(n), 0);
  };
  const shardSubscribers = (owner: Redis, channel: string) => subscribersOf(owner, channel, true);
  const plainSubscribers = (node: Redis, channel: string) => subscribersOf(node, channel, false);
  /** EVAL + EVALSHA run so far on every master together. */
  const scriptCalls = async (): Promise<number> => {
    let calls = 0;
    for (const node of cluster.masters) {
      calls +=
        (await commandCalls(admin(node), 'evalsha')) + (await commandCalls(admin(node), 'eval'));
    }
    return calls;
  };
  /** `count` fresh keys whose lock keys live on `count` different masters. */
  const keysOnDistinctMasters = async (label: string, count: number): Promise<string[]> => {
    const byMaster = new Map<number, string>();
    while (byMaster.size < count) {
      const key = uniqueKey(label);
      const owner = await cluster.masterForKey(`lock:{${key}}`);
      if (!byMaster.has(owner.port)) byMaster.set(owner.port, key);
    }
    return [...byMaster.values()];
  };

  beforeAll(async () => {
    cluster = await startCluster({ masters: 3 });
    for (const node of cluster.nodes) admins.set(node.port, node.client());
  });
  afterEach(async () => {
    await killAllWorkers();
    await Promise.all(lockClients.splice(0).map((locks) => locks.close().catch(() => undefined)));
  });
  afterAll(async () => {
    await killAllWorkers();
    await stopAllClusters();
    await stopAllRedis();
  });

  it('spreads keys over every master, each fencing counter on the master of its lock key', async () => {
    const locks = newLocks();
    const keys = Array.from({ length: 20 }, (_, i) => `spread:${i}`);
    const handles = await Promise.all(keys.map((key) => locks.acquire(key, { ttl: LONG_TTL })));

    const owners = new Set<number>();
    for (const [i, handle] of handles.entries()) {
      expect(handle.redisKey).toBe(`lock:{${keys[i]}}`);
      const owner = await cluster.masterForKey(handle.redisKey);
      const fenceOwner = await cluster.masterForKey(`${handle.redisKey}:fence`);
      expect(fenceOwner.port).toBe(owner.port);
      owners.add(owner.port);
      // Read on that master itself (a plain connection, no redirection): both keys are there.
      await expect(admin(owner).get(handle.redisKey)).resolves.toBe(handle.token);
      await expect(admin(owner).get(`${handle.redisKey}:fence`)).resolves.toBe(
        handle.fencingToken.toString(),
      );
    }
    expect(owners.size).toBe(3);

    for (const handle of handles) await expect(handle.release()).resolves.toBe(true);
    for (const handle of handles) {
      await expect(locks.redis!.exists(handle.redisKey)).resolves.toBe(0);
    }
  });

  it('keeps 3 processes × 2 lock clients mutually exclusive on keys of 3 masters, over 600 grants', async () => {
    const keys = await keysOnDistinctMasters('mutex', 3);
    const processes = 3;
    const config: ClusterLoopConfig = {
      startupNodes: cluster.startupNodes,
      keys,
      waiters: 2,
      grants: 100,
      // Far longer than the run: a stall only a missed wake-up could cause would miss the deadline.
      ttl: 10_000,
      waitTimeout: 15_000,
      prefix: `${uniqueKey('mutex-run')}:`,
    };
    const workers = Array.from({ length: processes }, () =>
      forkWorker(LOOP_WORKER, [JSON.stringify(config)]),
    );
    await Promise.all(
      workers.map((w) => nextMessage(w, (m: { type: string }) => m.type === 'ready', 20_000)),
    );
    const started = nowMs();
    for (const worker of workers) worker.send({ type: 'go' });
    const reports = await Promise.all(
      workers.map((w) =>
        nextMessage<ClusterLoopReport>(w, (m) => m.type === 'done' || m.type === 'error', 15_000),
      ),
    );
    const elapsed = nowMs() - started;
    for (const report of reports) {
      if (report.type === 'error') throw new Error(`a worker failed: ${report.message}`);
    }
    const done = reports as ClusterLoopDone[];
    for (const worker of workers)
      await expect(exited(worker)).resolves.toEqual({ code: 0, signal: null });

    const total = processes * config.waiters * config.grants;
    expect(done.map((r) => r.grants)).toEqual(
      Array(processes).fill(config.waiters * config.grants),
    );
    // Never two holders of a key at once, as every critical section's INCR saw it...
    expect(Math.max(...done.map((r) => r.maxInside))).toBe(1);
    expect(done.map((r) => r.failedReleases)).toEqual(Array(processes).fill(0));
    expect(done.flatMap((r) => r.warnings)).toEqual([]);
    expect(elapsed).toBeLessThan(12_000);

    const client = cluster.client();
    let logged = 0;
    for (const key of keys) {
      await expect(client.get(`${config.prefix}inside:{${key}}`)).resolves.toBe('0');
      await expect(client.exists(`lock:{${key}}`)).resolves.toBe(0);
      // ...and, logged from inside the sections in the order they ran, the fencing tokens of
      // each key only go up, while the key changed hands between the processes.
      const grants = (await client.lrange(`${config.prefix}grants:{${key}}`, 0, -1)).map(
        (entry) => {
          const [token, pid] = entry.split(' ');
          return { token: BigInt(token), pid: Number(pid) };
        },
      );
      logged += grants.length;
      for (let i = 1; i < grants.length; i++) {
        expect(grants[i].token).toBeGreaterThan(grants[i - 1].token);
      }
      expect(new Set(grants.map((g) => g.pid)).size).toBe(processes);
    }
    expect(logged).toBe(total);
  });

  describe('wake-ups through sharded pub/sub', () => {
    it('a waiter listens with SSUBSCRIBE on the owning master and gets the lock within 2 s of its release', async () => {
      const key = uniqueKey('wake');
      const channel = `lock:{${key}}:released`;
      const owner = await ownerOf(`lock:{${key}}`);
      const holder = await newLocks().acquire(key, { ttl: LONG_TTL });
      const waiter = newLocks();

      const waiting = waiter.acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 });
      await waitFor(async () => (await shardSubscribers(owner, channel)) === 1, {
        interval: 5,
        message: `a sharded subscriber of ${channel}`,
      });
      // Sharded, not classic pub/sub: no node has a SUBSCRIBE on the channel.
      for (const node of cluster.masters) {
        await expect(plainSubscribers(admin(node), channel)).resolves.toBe(0);
      }

      const releasedAt = nowMs();
      await expect(holder.release()).resolves.toBe(true);
      const lock = await waiting;
      expect(nowMs() - releasedAt).toBeLessThan(WAKE_UP_WITHIN);
      await expect(owner.get(`lock:{${key}}`)).resolves.toBe(lock.token);
      expect(lock.fencingToken).toBeGreaterThan(holder.fencingToken);
      // Nobody waits any more: the channel is given up (SUNSUBSCRIBE).
      await waitFor(async () => (await shardSubscribers(owner, channel)) === 0, {
        message: `${channel} to be unsubscribed`,
      });
      await lock.release();
    });

    it('fair mode hands the lock to queued waiters in arrival order, each told on its own sharded channel', async () => {
      const key = uniqueKey('fair');
      const lockKey = `lock:{${key}}`;
      const owner = await ownerOf(lockKey);
      // Long spot timeouts: a waiter refreshes its spot every 10 s, so only a hand-over message
      // can give it the lock within WAKE_UP_WITHIN.
      const fair = { fair: true, fairQueueTimeout: LONG_TTL };
      const holder = await newLocks(fair).acquire(key, { ttl: LONG_TTL });
      const order: string[] = [];
      const waitFair = (name: string): Promise<RedisLockHandle> =>
        newLocks(fair)
          .acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 })
          .then((lock) => {
            order.push(name);
            return lock;
          });
      const queued = (n: number) =>
        waitFor(async () => (await owner.zcard(`${lockKey}:queue`)) === n, {
          interval: 5,
          message: `${n} waiter(s) in the queue of ${key}`,
        });

      const first = waitFair('first');
      await queued(1);
      const second = waitFair('second');
      await queued(2);
      const tokens = await owner.zrange(`${lockKey}:queue`, '0', '-1');
      for (const token of tokens) {
        // Both waiters are of one client: they share its channel for the key.
        const own = waiterChannel(`${lockKey}:released`, token);
        await waitFor(async () => (await shardSubscribers(owner, own)) === 1, {
          interval: 5,
          message: `a sharded subscriber of ${own}`,
        });
      }

      let releasedAt = nowMs();
      await expect(holder.release()).resolves.toBe(true);
      const firstLock = await first;
      expect(nowMs() - releasedAt).toBeLessThan(WAKE_UP_WITHIN);
      expect(firstLock.token).toBe(tokens[0]);
      await expect(owner.get(lockKey)).resolves.toBe(tokens[0]);
      await expect(owner.zrange(`${lockKey}:queue`, '0', '-1')).resolves.toEqual([tokens[1]]);
      expect(order).toEqual(['first']);

      releasedAt = nowMs();
      await expect(firstLock.release()).resolves.toBe(true);
      const secondLock = await second;
      expect(nowMs() - releasedAt).toBeLessThan(WAKE_UP_WITHIN);
      expect(secondLock.token).toBe(tokens[1]);
      expect(order).toEqual(['first', 'second']);
      expect(firstLock.fencingToken).toBeGreaterThan(holder.fencingToken);
      expect(secondLock.fencingToken).toBeGreaterThan(firstLock.fencingToken);
      await expect(secondLock.release()).resolves.toBe(true);
      await expect(owner.exists(lockKey, `${lockKey}:queue`)).resolves.toBe(0);
    });
  });

  describe('multi-key locks', () => {
    const tagged = ['{acct}:1', '{acct}:2'];
    const taggedLocks = ['lock:{acct}:1:lock', 'lock:{acct}:2:lock'];

    it('locks keys with a common hash tag together, all or nothing', async () => {
      const owner = await ownerOf(taggedLocks[0]);
      expect((await cluster.masterForKey(taggedLocks[1])).port).toBe(
        (await cluster.masterForKey(taggedLocks[0])).port,
      );
      const locks = newLocks();
      const other = newLocks();

      const both = await locks.acquire(tagged, { ttl: LONG_TTL });
      expect(both.keys).toEqual(tagged);
      for (const lockKey of taggedLocks) {
        await expect(owner.get(lockKey)).resolves.toBe(both.token);
        await expect(owner.get(`${lockKey}:fence`)).resolves.toBe(both.fencingToken.toString());
      }
      await expect(both.release()).resolves.toBe(true);
      await expect(owner.exists(...taggedLocks)).resolves.toBe(0);

      // With either key held by someone else, neither is taken.
      for (const [i, busy] of tagged.entries()) {
        const held = await other.acquire(busy, { ttl: LONG_TTL });
        await expect(locks.tryAcquire(tagged, { ttl: LONG_TTL })).resolves.toBeNull();
        await expect(owner.get(taggedLocks[i])).resolves.toBe(held.token);
        await expect(owner.exists(taggedLocks[1 - i])).resolves.toBe(0);
        await held.release();
      }

      // A waiter for both is woken when the busy one is released, and then holds both.
      const held = await other.acquire(tagged[1], { ttl: LONG_TTL });
      const waiting = locks.acquire(tagged, { ttl: LONG_TTL, waitTimeout: 10_000 });
      await waitFor(
        async () => (await shardSubscribers(owner, `${taggedLocks[1]}:released`)) === 1,
        { interval: 5, message: 'the multi-key waiter to subscribe' },
      );
      const releasedAt = nowMs();
      await held.release();
      const taken = await waiting;
      expect(nowMs() - releasedAt).toBeLessThan(WAKE_UP_WITHIN);
      for (const lockKey of taggedLocks)
        await expect(owner.get(lockKey)).resolves.toBe(taken.token);
      await expect(taken.release()).resolves.toBe(true);
      await expect(owner.exists(...taggedLocks)).resolves.toBe(0);
    });

    it('locks keys of different slots one slot at a time, all or nothing, and releases them all', async () => {
      const [a, b, c] = await keysOnDistinctMasters('cross', 3);
      const locks = newLocks();
      const other = newLocks();
      const client = cluster.client();
      const lockKeys = [a, b, c].map((key) => `lock:{${key}}`);

      const all = await locks.acquire([c, a, b], { ttl: LONG_TTL });
      expect(all.keys).toEqual([a, b, c].sort());
      for (const lockKey of lockKeys) await expect(client.get(lockKey)).resolves.toBe(all.token);
      // Every slot issued a token; the handle carries the largest, and every key's counter was
      // raised to it.
      const fences = await Promise.all(lockKeys.map((k) => client.get(`${k}:fence`)));
      expect(fences).toEqual(lockKeys.map(() => all.fencingToken.toString()));
      await expect(all.extend(LONG_TTL)).resolves.toBeUndefined();
      await expect(all.release()).resolves.toBe(true);
      // So each key's next token is above it, whichever slot issued the largest.
      for (const key of [a, b, c]) {
        const single = await locks.acquire(key, { ttl: LONG_TTL });
        expect(single.fencingToken).toBeGreaterThan(all.fencingToken);
        await single.release();
      }
      // One EXISTS per key: a Cluster refuses one command over keys of several slots.
      const held = async () => (await Promise.all(lockKeys.map((k) => client.exists(k)))).join('');
      await expect(held()).resolves.toBe('000');

      // Any one key held elsewhere: none is left taken, whichever slot comes first.
      for (const busy of [a, b, c]) {
        const held = await other.acquire(busy, { ttl: LONG_TTL });
        await expect(locks.tryAcquire([a, b, c], { ttl: LONG_TTL })).resolves.toBeNull();
        for (const key of [a, b, c].filter((k) => k !== busy)) {
          await expect(client.exists(`lock:{${key}}`)).resolves.toBe(0);
        }
        await held.release();
      }

      // A waiter for all of them gets them once the busy one is released.
      const busyB = await other.acquire(b, { ttl: LONG_TTL });
      const waiting = locks.acquire([a, b, c], { ttl: LONG_TTL, waitTimeout: 10_000 });
      await waitFor(
        async () =>
          (await shardSubscribers(await ownerOf(`lock:{${b}}`), `lock:{${b}}:released`)) === 1,
        { interval: 5, message: 'the waiter to subscribe on the busy key' },
      );
      const releasedAt = nowMs();
      await busyB.release();
      const taken = await waiting;
      expect(nowMs() - releasedAt).toBeLessThan(WAKE_UP_WITHIN);
      await expect(taken.release()).resolves.toBe(true);
      await expect(held()).resolves.toBe('000');
    });

    it('isLocked on keys of different masters is true while any one of them is held', async () => {
      const [a, b] = await keysOnDistinctMasters('is-locked', 2);
      const locks = newLocks();
      const other = newLocks();
      await expect(locks.isLocked([a, b])).resolves.toBe(false);
      const heldB = await other.acquire(b, { ttl: LONG_TTL });
      await expect(locks.isLocked([a, b])).resolves.toBe(true);
      await expect(locks.isLocked([a])).resolves.toBe(false);
      await heldB.release();
      await expect(locks.isLocked([a, b])).resolves.toBe(false);
    });

    it('refuses a fair lock on keys of different slots with InvalidLockKeyError, before any script runs', async () => {
      const [a, b] = await keysOnDistinctMasters('cross-fair', 2);
      expect(hashSlot(`lock:{${a}}`)).not.toBe(hashSlot(`lock:{${b}}`));
      const locks = newLocks();
      const scriptsBefore = await scriptCalls();
      const { error } = await rejectionOf(
        locks.acquire([a, b], { fair: true, waitTimeout: 1_000 }),
      );
      expect(error).toBeInstanceOf(InvalidLockKeyError);
      expect(error.message).toMatch(/fair mode/);
      expect(error.message).toMatch(/common hash tag/);
      expect(await scriptCalls()).toBe(scriptsBefore);
    });
  });

  it('refuses waitForReplicas with a Cluster client when the lock client is made', () => {
    const redis = cluster.client({ lazyConnect: true });
    const make = () =>
      new RedisLockClient({ redis, waitForReplicas: { replicas: 1, timeout: 50 } });
    expect(make).toThrow(RangeError);
    expect(make).toThrow(/waitForReplicas/);
    expect(make).toThrow(/Cluster/);
  });
});
