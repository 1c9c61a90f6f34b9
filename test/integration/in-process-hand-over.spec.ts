import type { Redis } from 'ioredis';
import { LockScripts } from '../../lib/core/redis/scripts/index.js';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import {
  LockLostError,
  LockNotAcquiredError,
  LockUnavailableError,
} from '../../lib/errors/lock.errors.js';
import {
  FENCE_STRIDE,
  DEFAULT_LOCAL_PASSES,
  MAX_LOCAL_PASSES,
} from '../../lib/redis-lock.constants.js';
import { killAllWorkers } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import {
  commandCalls,
  CommandLog,
  fairQueue,
  gate,
  LockAgent,
  LockClients,
  monitorCaughtUp,
  nowMs,
  rejectionOf,
  runContendLoop,
  subscribed,
  subscriberCount,
  uniqueKey,
} from './helpers.js';
import { grantsOf, type LoopConfig } from './workers/protocol.js';

/**
 * Longer than any test here: a lease never runs out unless a test means it to, so only releases,
 * passes and losses decide who gets the lock.
 */
const LONG_TTL = 30_000;

/** The scripts run on `redisKey`, in order, by name (each EVALSHA names the lock key first). */
function scriptsOn(log: CommandLog, redisKey: string): string[] {
  const names = Object.keys(LockScripts) as (keyof typeof LockScripts)[];
  return log.commands
    .filter((args) => args[0].toLowerCase() === 'evalsha' && args[3] === redisKey)
    .map((args) => names.find((name) => LockScripts[name].sha === args[1]) ?? args[1]);
}

/** The lock scripts `token` ran, leaving out the extends that bring a lease to a waiter's ttl. */
function acquiresAndReleasesOf(log: CommandLog, token: string): string[] {
  return log.scriptsOf(token).filter((name) => name !== 'extend');
}

/**
 * Default mode: a lock released while another caller of the same process (the same
 * `RedisLockClient`) waits for the same keys is passed straight to that waiter, with no Redis
 * command: same token, the next fencing token, the lease that is left. At most DEFAULT_LOCAL_PASSES
 * passes in a row, then the lock goes back to Redis, where other processes' waiters are in line.
 * The first waiter of a process that holds the lock "parks": it neither subscribes nor queues in
 * Redis, but it still contends there when the holder lets go some other way (lost, lapsed, never
 * released). Fair mode passes only to the waiter next in line in the queue in Redis (the first
 * waiter is next after the holder).
 */
describe('local passes: a released lock goes to the next waiter of the same process', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
    // Every script in the server's cache: each one run below is then a single EVALSHA, which
    // `CommandLog.scriptsOf` counts exactly (no EVALSHA that failed with NOSCRIPT, then EVAL).
    for (const script of Object.values(LockScripts)) await admin.script('LOAD', script.source);
  });
  afterEach(async () => {
    await killAllWorkers();
    await clients.closeAll();
  });
  afterAll(async () => {
    await killAllWorkers();
    await stopAllRedis();
  });

  /** A lock client on a connection of its own, and that connection. */
  function lockClient(
    options: { fair?: boolean; fairQueueTimeout?: number; maxLocalPasses?: number } = {},
  ) {
    const connection = redis.client();
    return { locks: clients.create(connection, options), connection };
  }

  /**
   * Starts `acquire`, which must find the key busy, and resolves once the waiter has had that
   * first attempt's answer and acted on it: in default mode, with its process holding the key,
   * it is then parked, waiting for a pass. (The pending acquire is returned in an object, or
   * `await` would wait for it.)
   */
  async function startWaiting<T>(
    connection: Redis,
    acquire: () => Promise<T>,
  ): Promise<{ pending: Promise<T> }> {
    const before = await commandCalls(admin, 'evalsha');
    const pending = acquire();
    // Its failure is awaited (and checked) by the test, maybe a moment later.
    pending.catch(() => undefined);
    await waitFor(async () => (await commandCalls(admin, 'evalsha')) > before, {
      interval: 5,
      message: "the waiter's first attempt to reach Redis",
    });
    // The busy answer went out on the waiter's connection before this PING's reply, which
    // therefore arrives after it; the admin round trip then lets every promise callback that
    // answer started run before the test goes on.
    await connection.ping();
    await admin.ping();
    return { pending };
  }

  it('passes the lock to three waiters of the process in arrival order: one token, fencing tokens +1n each, no acquire or release in Redis', async () => {
    const key = uniqueKey('three-passes');
    const { locks, connection } = lockClient();
    const log = await CommandLog.start(admin);
    try {
      const holder = await locks.acquire(key, { ttl: LONG_TTL });
      const order: string[] = [];
      const noted = (name: string) => (lock: RedisLockHandle) => {
        order.push(name);
        return lock;
      };
      const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
      const { pending: first } = await startWaiting(connection, () =>
        locks.acquire(key, opts).then(noted('first')),
      );
      // The others queue behind it in this process, without asking Redis.
      const second = locks.acquire(key, opts).then(noted('second'));
      const third = locks.acquire(key, opts).then(noted('third'));
      await monitorCaughtUp(admin, log);
      const scriptsBefore = scriptsOn(log, holder.redisKey).length;

      const handles = [holder];
      for (const next of [first, second, third]) {
        // Passed, not released: nothing to release in Redis.
        await expect(handles[handles.length - 1].release()).resolves.toBe(true);
        const lock = await next;
        // The value in Redis never changed hands: still the first grant's token.
        await expect(admin.get(lock.redisKey)).resolves.toBe(holder.token);
        handles.push(lock);
      }
      expect(order).toEqual(['first', 'second', 'third']);
      expect(handles.map((h) => h.token)).toEqual(Array(4).fill(holder.token));
      expect(handles.map((h) => h.fencingToken)).toEqual(
        [0n, 1n, 2n, 3n].map((step) => holder.fencingToken + step),
      );
      expect(handles.map((h) => h.isHeld())).toEqual([false, false, false, true]);

      // Not one acquire or release script while the lock went round (an extend to a waiter's
      // ttl may run: it does not move the lock).
      await monitorCaughtUp(admin, log);
      const during = scriptsOn(log, holder.redisKey).slice(scriptsBefore);
      expect(during.filter((name) => name !== 'extend')).toEqual([]);
      // The last one has no pass left: its release runs in Redis.
      await expect(handles[3].release()).resolves.toBe(true);
      await expect(admin.exists(holder.redisKey)).resolves.toBe(0);
      await monitorCaughtUp(admin, log);
      expect(acquiresAndReleasesOf(log, holder.token)).toEqual(['acquire', 'release']);
    } finally {
      log.stop();
    }
  });

  it(`is bounded: after ${DEFAULT_LOCAL_PASSES} passes the next release runs in Redis, and the next grant comes from Redis (new token, fencing token issued there)`, async () => {
    const key = uniqueKey('bounded');
    const { locks, connection } = lockClient();
    const log = await CommandLog.start(admin);
    try {
      const holder = await locks.acquire(key, { ttl: LONG_TTL });
      const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
      const { pending: first } = await startWaiting(connection, () => locks.acquire(key, opts));
      const waiters = [
        first,
        ...Array.from({ length: DEFAULT_LOCAL_PASSES + 1 }, () => locks.acquire(key, opts)),
      ];

      let current = holder;
      const passed: RedisLockHandle[] = [];
      for (const next of waiters.slice(0, DEFAULT_LOCAL_PASSES)) {
        await expect(current.release()).resolves.toBe(true);
        current = await next;
        await expect(admin.get(current.redisKey)).resolves.toBe(holder.token);
        passed.push(current);
      }
      expect(passed.map((h) => h.token)).toEqual(Array(DEFAULT_LOCAL_PASSES).fill(holder.token));
      expect(passed.map((h) => h.fencingToken)).toEqual(
        passed.map((_, i) => holder.fencingToken + BigInt(i + 1)),
      );
      await monitorCaughtUp(admin, log);
      expect(acquiresAndReleasesOf(log, holder.token)).toEqual(['acquire']);

      // The last pass is spent: this release runs the release script in Redis.
      const lastPassed = passed[passed.length - 1];
      await expect(lastPassed.release()).resolves.toBe(true);
      await monitorCaughtUp(admin, log);
      expect(acquiresAndReleasesOf(log, holder.token)).toEqual(['acquire', 'release']);

      const fromRedis = await waiters[DEFAULT_LOCAL_PASSES];
      expect(fromRedis.token).not.toBe(holder.token);
      await expect(admin.get(fromRedis.redisKey)).resolves.toBe(fromRedis.token);
      expect(fromRedis.fencingToken).toBeGreaterThan(lastPassed.fencingToken);
      // Redis' counter stepped once since the holder's grant.
      expect(fromRedis.fencingToken).toBe(holder.fencingToken + BigInt(FENCE_STRIDE));

      // A grant from Redis can be passed on again.
      await expect(fromRedis.release()).resolves.toBe(true);
      const next = await waiters[DEFAULT_LOCAL_PASSES + 1];
      expect(next.token).toBe(fromRedis.token);
      expect(next.fencingToken).toBe(fromRedis.fencingToken + 1n);
      await next.release();
    } finally {
      log.stop();
    }
  });

  it('maxLocalPasses sets the bound: 1 passes once, then the release runs in Redis; 0 never passes', async () => {
    for (const maxLocalPasses of [1, 0]) {
      const key = uniqueKey(`max-passes-${maxLocalPasses}`);
      const { locks, connection } = lockClient({ maxLocalPasses });
      const log = await CommandLog.start(admin);
      try {
        const holder = await locks.acquire(key, { ttl: LONG_TTL });
        const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
        const { pending: first } = await startWaiting(connection, () => locks.acquire(key, opts));
        const second = locks.acquire(key, opts);

        await expect(holder.release()).resolves.toBe(true);
        const a = await first;
        // Passed (same token, next fencing token) only while passes are left.
        expect(a.token === holder.token).toBe(maxLocalPasses > 0);
        await expect(a.release()).resolves.toBe(true);
        const b = await second;
        expect(b.token).not.toBe(a.token);
        expect(b.fencingToken - a.fencingToken).toBeGreaterThanOrEqual(1n);
        await b.release();

        await monitorCaughtUp(admin, log);
        const releasesInRedis = [holder, a, b]
          .filter((h, i, all) => all.findIndex((o) => o.token === h.token) === i)
          .flatMap((h) => acquiresAndReleasesOf(log, h.token))
          .filter((name) => name === 'release').length;
        // 1: the holder's grant passed once, then released; b's own. 0: each grant released.
        expect(releasesInRedis).toBe(maxLocalPasses === 1 ? 2 : 3);
      } finally {
        log.stop();
      }
    }
  });

  it('maxLocalPasses takes any integer >= 0 or Infinity, and refuses anything else naming the option', () => {
    for (const maxLocalPasses of [-1, 1.5, Number.NaN, -Infinity]) {
      expect(() => clients.create(redis.client(), { maxLocalPasses })).toThrow(
        /maxLocalPasses.*an integer >= 0, or Infinity/,
      );
    }
    for (const maxLocalPasses of [0, FENCE_STRIDE, 1_000, Infinity]) {
      expect(() => clients.create(redis.client(), { maxLocalPasses })).not.toThrow();
    }
  });

  it(`with a larger maxLocalPasses (Infinity), still passes a grant at most ${MAX_LOCAL_PASSES} times: the next release runs in Redis, whose fencing token is above every pass's`, async () => {
    const key = uniqueKey('passes-capped');
    const { locks, connection } = lockClient({ maxLocalPasses: Infinity });
    const log = await CommandLog.start(admin);
    try {
      const holder = await locks.acquire(key, { ttl: LONG_TTL });
      const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
      const { pending: first } = await startWaiting(connection, () => locks.acquire(key, opts));
      const waiters = [
        first,
        ...Array.from({ length: MAX_LOCAL_PASSES }, () => locks.acquire(key, opts)),
      ];
      let current = holder;
      for (const next of waiters.slice(0, MAX_LOCAL_PASSES)) {
        await expect(current.release()).resolves.toBe(true);
        current = await next;
        expect(current.token).toBe(holder.token);
      }
      expect(current.fencingToken).toBe(holder.fencingToken + BigInt(MAX_LOCAL_PASSES));
      await monitorCaughtUp(admin, log);
      expect(acquiresAndReleasesOf(log, holder.token)).toEqual(['acquire']);

      await expect(current.release()).resolves.toBe(true);
      const fromRedis = await waiters[MAX_LOCAL_PASSES];
      expect(fromRedis.token).not.toBe(holder.token);
      expect(fromRedis.fencingToken).toBeGreaterThan(current.fencingToken);
      await monitorCaughtUp(admin, log);
      expect(acquiresAndReleasesOf(log, holder.token)).toEqual(['acquire', 'release']);
      await fromRedis.release();
    } finally {
      log.stop();
    }
  });

  it(`is bounded across processes: a waiter of another process queued in Redis gets the lock within ${DEFAULT_LOCAL_PASSES + 1} grants of a process whose waiters keep asking`, async () => {
    const LOCAL_WAITERS = 4;
    const key = uniqueKey('other-process');
    const agent = await LockAgent.start(redis.url);
    const { locks, connection } = lockClient();
    const holder = await locks.acquire(key, { ttl: LONG_TTL });

    // Local waiters that ask again as soon as they released. Each grant is recorded and held
    // until the test lets it go, so the test steps the lock from grant to grant.
    const granted: { lock: RedisLockHandle; leave: () => void }[] = [];
    let stopping = false;
    const localLoop = async () => {
      while (!stopping) {
        const lock = await locks.acquire(key, { ttl: LONG_TTL, waitTimeout: 20_000 });
        const section = gate();
        granted.push({ lock, leave: () => section.open() });
        if (!stopping) await section.promise;
        await lock.release();
      }
    };
    const { pending: firstLoop } = await startWaiting(connection, localLoop);
    const loops = [firstLoop, ...Array.from({ length: LOCAL_WAITERS - 1 }, localLoop)];
    // Awaited at the end; a failure before leaves them waiting until the client is closed.
    for (const loop of loops) loop.catch(() => undefined);

    agent.send({
      type: 'acquire',
      id: 'remote',
      key,
      options: { ttl: LONG_TTL, waitTimeout: 20_000 },
    });
    let remoteAnswered = false;
    const remote = agent.reply('remote', ['granted', 'failed'], 20_000).then((reply) => {
      remoteAnswered = true;
      return reply;
    });
    // It queues in Redis (the first waiter of its process); this process's waiters do not.
    await waitFor(async () => (await fairQueue(admin, key)).length === 1, {
      interval: 5,
      message: 'the other process to queue in Redis',
    });
    expect(await subscriberCount(admin, key)).toBe(1);

    // Step: let the current holder go, then wait for the next grant, here or there.
    await holder.release();
    while (!remoteAnswered) {
      const seen = granted.length;
      await waitFor(() => remoteAnswered || granted.length > seen, { message: 'the next grant' });
      // A process that kept the lock from the other would go on here until this fails.
      if (remoteAnswered || granted.length > DEFAULT_LOCAL_PASSES + 1) break;
      granted[granted.length - 1].leave();
    }
    expect(granted.length).toBeLessThanOrEqual(DEFAULT_LOCAL_PASSES + 1);
    const reply = await remote;
    if (reply.type !== 'granted')
      throw new Error(`the other process failed: ${JSON.stringify(reply)}`);
    // Local grants did happen meanwhile: passes of the holder's grant.
    expect(granted.length).toBeGreaterThanOrEqual(1);
    expect(granted.map((g) => g.lock.token)).toEqual(Array(granted.length).fill(holder.token));
    const lastLocal = granted[granted.length - 1].lock.fencingToken;
    expect(BigInt(reply.fencingToken)).toBeGreaterThan(lastLocal);

    // Let everything finish: the other process lets go, each local waiter takes the lock once
    // more and stops.
    stopping = true;
    for (const g of granted) g.leave();
    agent.send({ type: 'release', id: 'remote' });
    await expect(agent.reply('remote', ['released'])).resolves.toMatchObject({ released: true });
    await Promise.all(loops);
    await expect(admin.exists(holder.redisKey)).resolves.toBe(0);
  });

  it('a parked waiter neither subscribes nor queues in Redis while its process holds the lock, and the release passes to it', async () => {
    const { locks, connection } = lockClient();
    // The client's subscriber connection is up (from an earlier wait on another key), so a
    // waiter that did subscribe would do so at once, before the checks below.
    const other = uniqueKey('warm-subscriber');
    const otherHolder = await clients.create(redis.client()).acquire(other, { ttl: LONG_TTL });
    const warming = locks.acquire(other, { waitTimeout: 10_000 });
    await subscribed(admin, other);
    await otherHolder.release();
    await (await warming).release();
    await waitFor(async () => (await subscriberCount(admin, other)) === 0, {
      message: `no subscriber of ${other}`,
    });

    const key = uniqueKey('parked');
    const holder = await locks.acquire(key, { ttl: LONG_TTL });
    const log = await CommandLog.start(admin);
    try {
      const { pending } = await startWaiting(connection, () =>
        locks.acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 }),
      );
      // Anything it sent after its first attempt left before this round trip on its connection.
      await locks.isLocked(key);
      await monitorCaughtUp(admin, log);
      expect(await subscriberCount(admin, key)).toBe(0);
      await expect(fairQueue(admin, key)).resolves.toEqual([]);
      // Its busy first attempt, nothing else.
      expect(scriptsOn(log, holder.redisKey)).toEqual(['acquire']);
      expect(log.commands.filter((args) => args[0].toLowerCase() === 'subscribe')).toEqual([]);

      await expect(holder.release()).resolves.toBe(true);
      const lock = await pending;
      expect(lock.token).toBe(holder.token);
      expect(lock.fencingToken).toBe(holder.fencingToken + 1n);
      await monitorCaughtUp(admin, log);
      expect(scriptsOn(log, holder.redisKey).filter((name) => name !== 'extend')).toEqual([
        'acquire',
      ]);
      expect(log.commands.filter((args) => args[0].toLowerCase() === 'subscribe')).toEqual([]);
      expect(await subscriberCount(admin, key)).toBe(0);
      await lock.release();
    } finally {
      log.stop();
    }
  });

  it('a holder that never lets go (ttl 300 ms, no watchdog) keeps a parked waiter only until its lease ran out: the waiter then gets the lock from Redis', async () => {
    const ttl = 300;
    const key = uniqueKey('never-released');
    const { locks, connection } = lockClient();
    const before = nowMs();
    const holder = await locks.acquire(key, { ttl, autoRenew: false });
    const { pending } = await startWaiting(connection, () =>
      locks.acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 }),
    );
    const lock = await pending;
    const at = nowMs();
    // Not before the holder's lease ran out in Redis (it was set after `before`)...
    expect(at - before).toBeGreaterThanOrEqual(ttl - 5);
    // ...and soon after it, far from the 10 s waitTimeout.
    expect(at - before).toBeLessThan(2000);
    expect(lock.token).not.toBe(holder.token);
    expect(lock.fencingToken).toBe(holder.fencingToken + BigInt(FENCE_STRIDE));
    await expect(admin.get(lock.redisKey)).resolves.toBe(lock.token);
    expect(holder.isHeld()).toBe(false);
    // The holder's late release neither passes nor deletes anything.
    await expect(holder.release()).resolves.toBe(false);
    await expect(admin.get(lock.redisKey)).resolves.toBe(lock.token);
    await lock.release();
  });

  it('a holder whose key is taken away (its watchdog finds the key gone): the parked waiter contends in Redis and gets the lock', async () => {
    // Renewed every second: the loss is seen at most ~1 s after the key goes, while the holder's
    // last lease would last at least 2 s more (the waiter's re-check when it runs out).
    const ttl = 3000;
    const key = uniqueKey('taken-away');
    const { locks, connection } = lockClient();
    const holder = await locks.acquire(key, { ttl, autoRenew: true });
    const { pending } = await startWaiting(connection, () =>
      locks.acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 }),
    );
    await expect(admin.del(holder.redisKey)).resolves.toBe(1);
    const deletedAt = nowMs();

    const lock = await pending;
    expect(nowMs() - deletedAt).toBeLessThan(1800);
    expect(holder.isHeld()).toBe(false);
    expect(holder.signal.reason).toBeInstanceOf(LockLostError);
    expect(lock.token).not.toBe(holder.token);
    expect(lock.fencingToken).toBeGreaterThanOrEqual(holder.fencingToken + BigInt(FENCE_STRIDE));
    await expect(admin.get(lock.redisKey)).resolves.toBe(lock.token);
    await lock.release();
  });

  it('abort while parked: rejects within 500 ms (aborted: true), and a later release is not passed to it but to the next local waiter, or to Redis when there is none', async () => {
    const key = uniqueKey('abort-parked');
    const { locks, connection } = lockClient();
    const holder = await locks.acquire(key, { ttl: LONG_TTL });
    const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
    const controller = new AbortController();
    const { pending: aborting } = await startWaiting(connection, () =>
      locks.acquire(key, { ...opts, signal: controller.signal }),
    );
    const next = locks.acquire(key, opts);

    const abortedAt = nowMs();
    controller.abort();
    const { error } = await rejectionOf(aborting);
    expect(nowMs() - abortedAt).toBeLessThan(500);
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(error).toMatchObject({ key, aborted: true });
    // A round trip, so the next waiter has taken the aborted one's place (promise callbacks).
    await admin.ping();

    await expect(holder.release()).resolves.toBe(true);
    const lock = await next;
    expect(lock.token).toBe(holder.token);
    expect(lock.fencingToken).toBe(holder.fencingToken + 1n);

    // Now the only waiter is parked, then aborts: the release has nobody to pass to.
    const second = new AbortController();
    const { pending: alone } = await startWaiting(connection, () =>
      locks.acquire(key, { ...opts, signal: second.signal }),
    );
    second.abort();
    await expect(alone).rejects.toMatchObject({ aborted: true });
    const log = await CommandLog.start(admin);
    try {
      await expect(lock.release()).resolves.toBe(true);
      await expect(admin.exists(lock.redisKey)).resolves.toBe(0);
      await monitorCaughtUp(admin, log);
      expect(log.scriptsOf(holder.token)).toEqual(['release']);
    } finally {
      log.stop();
    }
  });

  it('deadline while parked: LockNotAcquiredError (aborted: false) on time, and the release then goes to Redis', async () => {
    const waitTimeout = 300;
    const key = uniqueKey('deadline-parked');
    const { locks, connection } = lockClient();
    const holder = await locks.acquire(key, { ttl: LONG_TTL });
    const started = nowMs();
    const { pending } = await startWaiting(connection, () =>
      locks.acquire(key, { ttl: LONG_TTL, waitTimeout }),
    );
    const { error } = await rejectionOf(pending);
    const ms = nowMs() - started;
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(error).toMatchObject({ key, aborted: false });
    expect(ms).toBeGreaterThanOrEqual(waitTimeout - 2);
    expect(ms).toBeLessThan(waitTimeout + 700);
    expect(await subscriberCount(admin, key)).toBe(0);
    await expect(holder.release()).resolves.toBe(true);
    await expect(admin.exists(holder.redisKey)).resolves.toBe(0);
  });

  it('fair mode passes in the order of the queue in Redis: to the first waiter, right behind the holder, then to the one right behind it; only the last release runs in Redis', async () => {
    const key = uniqueKey('fair-in-line');
    const { locks, connection } = lockClient({ fair: true });
    const log = await CommandLog.start(admin);
    try {
      // Granted on a free key: it never stood in the queue, the waiters line up behind it.
      const holder = await locks.acquire(key, { ttl: LONG_TTL });
      const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
      const { pending: first } = await startWaiting(connection, () => locks.acquire(key, opts));
      const { pending: second } = await startWaiting(connection, () => locks.acquire(key, opts));
      expect(await fairQueue(admin, key)).toHaveLength(2);

      await expect(holder.release()).resolves.toBe(true);
      const a = await first;
      // First in the queue, right behind the holder: passed, in the queue's order.
      expect(a.token).toBe(holder.token);
      expect(a.fencingToken).toBe(holder.fencingToken + 1n);
      await expect(a.release()).resolves.toBe(true);
      const b = await second;
      expect(b.token).toBe(holder.token);
      expect(b.fencingToken).toBe(a.fencingToken + 1n);
      // Both places stay in the queue while the lock is passed, and go with its release.
      expect(await fairQueue(admin, key)).toHaveLength(2);
      await expect(b.release()).resolves.toBe(true);
      expect(await fairQueue(admin, key)).toHaveLength(0);
      await expect(admin.exists(holder.redisKey)).resolves.toBe(0);

      await monitorCaughtUp(admin, log);
      // One grant and one release in Redis for the three of them.
      expect(acquiresAndReleasesOf(log, holder.token)).toEqual(['acquireFair', 'release']);
      expect(scriptsOn(log, holder.redisKey).filter((name) => name === 'release')).toEqual([
        'release',
      ]);
    } finally {
      log.stop();
    }
  });

  it('fair mode: a waiter first in the queue behind a holder of another client is handed the lock in Redis, and the waiter behind it still gets the pass after refreshing its place (first in the queue now) while that one holds', async () => {
    const key = uniqueKey('fair-kept-ahead');
    // Places are refreshed every 100 ms.
    const { locks, connection } = lockClient({ fair: true, fairQueueTimeout: 300 });
    const { locks: elsewhere } = lockClient({ fair: true });
    const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
    const holder = await elsewhere.acquire(key, opts);
    const { pending: first } = await startWaiting(connection, () => locks.acquire(key, opts));
    const { pending: second } = await startWaiting(connection, () => locks.acquire(key, opts));
    await expect(holder.release()).resolves.toBe(true);
    const a = await first;
    // Handed over in Redis: a token of its own, issued there.
    expect(a.token).not.toBe(holder.token);
    expect(a.fencingToken).toBe(holder.fencingToken + BigInt(FENCE_STRIDE));
    expect(await fairQueue(admin, key)).toHaveLength(1);
    // While `a` holds, `second` refreshes its place (first in the queue in Redis now) more than
    // once; the extend that brings `a` to its ttl is one script more.
    const before = await commandCalls(admin, 'evalsha');
    await waitFor(async () => (await commandCalls(admin, 'evalsha')) >= before + 3, {
      message: 'the second waiter to refresh its place',
    });
    await connection.ping();
    await admin.ping();
    await expect(a.release()).resolves.toBe(true);
    const b = await second;
    expect(b.token).toBe(a.token);
    expect(b.fencingToken).toBe(a.fencingToken + 1n);
    await b.release();
  });

  it('fair mode keeps the order across processes: a waiter of this process behind a waiter of another one is not passed the lock past it', async () => {
    const key = uniqueKey('fair-order');
    const agent = await LockAgent.start(redis.url, { fair: true });
    const { locks, connection } = lockClient({ fair: true });
    const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
    const holder = await locks.acquire(key, opts);
    const order: string[] = [];
    const { pending: first } = await startWaiting(connection, () =>
      locks.acquire(key, opts).then((lock) => (order.push('first'), lock)),
    );
    agent.send({ type: 'acquire', id: 'remote', key, options: opts });
    await waitFor(async () => (await fairQueue(admin, key)).length === 2, {
      message: 'the other process’s waiter in the queue',
    });
    const { pending: last } = await startWaiting(connection, () =>
      locks.acquire(key, opts).then((lock) => (order.push('last'), lock)),
    );
    expect(await fairQueue(admin, key)).toHaveLength(3);

    await expect(holder.release()).resolves.toBe(true);
    const a = await first;
    expect(a.fencingToken).toBe(holder.fencingToken + 1n);
    await expect(a.release()).resolves.toBe(true);
    // Not passed to `last` (a waiter of this process, but behind the other one): to Redis, which
    // issues the next fencing token there.
    const remote = await agent.reply('remote', ['granted']);
    expect(order).toEqual(['first']);
    expect(BigInt(remote.fencingToken)).toBe(holder.fencingToken + BigInt(FENCE_STRIDE));
    agent.send({ type: 'release', id: 'remote' });
    await agent.reply('remote', ['released']);
    const c = await last;
    expect(order).toEqual(['first', 'last']);
    expect(c.fencingToken).toBeGreaterThan(BigInt(remote.fencingToken));
    await c.release();
  });

  it('a passed lock is given the waiter’s own ttl: holder ttl 2 s, waiter ttl 20 s, PTTL in Redis rises above 10 s', async () => {
    const key = uniqueKey('passed-ttl');
    const { locks, connection } = lockClient();
    const holder = await locks.acquire(key, { ttl: 2000, autoRenew: false });
    const { pending } = await startWaiting(connection, () =>
      locks.acquire(key, { ttl: 20_000, autoRenew: false, waitTimeout: 10_000 }),
    );
    await expect(admin.pttl(holder.redisKey)).resolves.toBeLessThanOrEqual(2000);
    await expect(holder.release()).resolves.toBe(true);
    const lock = await pending;
    expect(lock.token).toBe(holder.token);
    await waitFor(async () => (await admin.pttl(lock.redisKey)) > 10_000, {
      message: 'the passed lock to be extended to the waiter’s ttl',
    });
    await waitFor(() => lock.leaseLeft() > 10_000, {
      message: 'the handle to know of its longer lease',
    });
    expect(lock.isHeld()).toBe(true);
    await lock.release();
  });

  it('a passed lock is not extended when its lease left is the waiter’s ttl but for a few ms, and is shortened when longer than the waiter’s ttl', async () => {
    const key = uniqueKey('near-ttl');
    const { locks, connection } = lockClient();
    // "A few ms" is LEASE_SHORTFALL (1 %) of the ttl: 6 s here, so a loaded machine's slow set-up
    // between the grant and the pass still fits in it.
    const ttl = 600_000;
    const log = await CommandLog.start(admin);
    try {
      const holder = await locks.acquire(key, { ttl, autoRenew: false });
      const same = startWaiting(connection, () =>
        locks.acquire(key, { ttl, autoRenew: false, waitTimeout: 10_000 }),
      );
      const { pending: sameTtl } = await same;
      const shorter = locks.acquire(key, { ttl: 2000, autoRenew: false, waitTimeout: 10_000 });

      await expect(holder.release()).resolves.toBe(true);
      const a = await sameTtl;
      expect(a.token).toBe(holder.token);
      // Held past the turn in which an extend would be sent, and past its reply.
      await new Promise((resolve) => setImmediate(resolve));
      await connection.ping();
      await expect(a.release()).resolves.toBe(true);
      const b = await shorter;
      expect(b.token).toBe(holder.token);
      // b's lease in Redis comes down to its own ttl (a background extend after it started).
      await waitFor(async () => (await admin.pttl(b.redisKey)) <= 2000, {
        message: 'the passed lock to be shortened to the waiter’s ttl',
      });
      await b.release();

      await monitorCaughtUp(admin, log);
      // One extend in all, b's: a, with all but a few ms of the same ttl, needed none.
      expect(log.scriptsOf(holder.token).filter((name) => name === 'extend')).toEqual(['extend']);
    } finally {
      log.stop();
    }
  });

  it('a passed lock with little lease left is extended before the waiter gets it: holder ttl 1 s released with < 400 ms left, waiter ttl 20 s', async () => {
    const key = uniqueKey('short-pass');
    const { locks, connection } = lockClient();
    const holder = await locks.acquire(key, { ttl: 1000, autoRenew: false });
    const { pending } = await startWaiting(connection, () =>
      locks.acquire(key, { ttl: 20_000, autoRenew: false, waitTimeout: 10_000 }),
    );
    await waitFor(() => holder.leaseLeft() < 400, { message: 'the holder’s lease to run low' });
    await expect(holder.release()).resolves.toBe(true);
    const lock = await pending;
    expect(lock.token).toBe(holder.token);
    // Already extended when the waiter got it: it starts with its own ttl, not 400 ms.
    await expect(admin.pttl(lock.redisKey)).resolves.toBeGreaterThan(10_000);
    expect(lock.leaseLeft()).toBeGreaterThan(10_000);
    await lock.release();
  });

  it('a caller asking in the same turn of the event loop as the release (the releaser asking again) takes the lock before the parked waiter, which gets it next', async () => {
    const key = uniqueKey('same-turn');
    const { locks, connection } = lockClient();
    const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
    const holder = await locks.acquire(key, opts);
    const order: string[] = [];
    const { pending: waiter } = await startWaiting(connection, () =>
      locks.acquire(key, opts).then((lock) => (order.push('waiter'), lock)),
    );
    await expect(holder.release()).resolves.toBe(true);
    // Still the release's turn (only promise callbacks ran since): the releaser asks again.
    const again = await locks.acquire(key, opts);
    order.push('again');
    expect(again.token).toBe(holder.token);
    expect(again.fencingToken).toBe(holder.fencingToken + 1n);
    // The waiter was not passed the lock meanwhile, and is passed it on the next release.
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['again']);
    await expect(again.release()).resolves.toBe(true);
    const next = await waiter;
    expect(order).toEqual(['again', 'waiter']);
    expect(next.fencingToken).toBe(holder.fencingToken + 2n);
    await next.release();
  });

  it('a caller asking after the release’s turn does not take the lock past the waiter', async () => {
    const key = uniqueKey('later-turn');
    const { locks, connection } = lockClient();
    const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
    const holder = await locks.acquire(key, opts);
    const { pending: waiter } = await startWaiting(connection, () => locks.acquire(key, opts));
    await expect(holder.release()).resolves.toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    // The release's turn is over: the lock went to the waiter, and this caller finds it busy.
    const { pending: late } = await startWaiting(connection, () => locks.acquire(key, opts));
    const first = await waiter;
    expect(first.fencingToken).toBe(holder.fencingToken + 1n);
    await expect(first.release()).resolves.toBe(true);
    const second = await late;
    expect(second.fencingToken).toBe(holder.fencingToken + 2n);
    await second.release();
  });

  it('closing the client in the turn of a release gives the lock back to Redis, and the waiter fails as closed', async () => {
    const key = uniqueKey('close-vacant');
    const { locks, connection } = lockClient();
    const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
    const holder = await locks.acquire(key, opts);
    const { pending } = await startWaiting(connection, () => locks.acquire(key, opts));
    // Released to this process (the waiter would get it at the end of this turn)...
    await expect(holder.release()).resolves.toBe(true);
    // ...but the client closes first: nobody here may keep it.
    await locks.close();
    const { error } = await rejectionOf(pending);
    expect(error).toBeInstanceOf(LockUnavailableError);
    await waitFor(async () => (await admin.exists(holder.redisKey)) === 0, {
      message: 'the lock to be released in Redis',
    });
  });

  it('keeps mutual exclusion and rising fencing tokens over 900 grants to 3 processes x 3 waiters, with passes and grants from Redis', async () => {
    const PROCESSES = 3;
    const WAITERS = 3;
    const GRANTS = 100;
    const key = uniqueKey('passes-stress');
    const config: LoopConfig = {
      url: redis.url,
      keySets: [[key]],
      waiters: WAITERS,
      grants: GRANTS,
      ttl: LONG_TTL,
      waitTimeout: 60_000,
      prefix: `${key}:`,
    };
    const { reports } = await runContendLoop(config, PROCESSES, 25_000);
    expect(reports.map((r) => r.grants)).toEqual(Array(PROCESSES).fill(WAITERS * GRANTS));
    expect(Math.max(...reports.map((r) => r.maxInside))).toBe(1);
    expect(reports.map((r) => r.failedReleases)).toEqual(Array(PROCESSES).fill(0));
    expect(reports.flatMap((r) => r.warnings)).toEqual([]);

    // In the order the grants happened (logged from inside each critical section).
    const grants = await grantsOf(admin, config.prefix, key);
    expect(grants).toHaveLength(PROCESSES * WAITERS * GRANTS);
    expect(new Set(grants.map((g) => g.pid)).size).toBe(PROCESSES);
    const drop = grants.findIndex((g, i) => i > 0 && g.fencingToken <= grants[i - 1].fencingToken);
    expect(drop).toBe(-1);

    // Redis issues tokens FENCE_STRIDE apart from the first; a token in between is a pass, and
    // must follow the grant it was passed from: same process, one less.
    const stride = BigInt(FENCE_STRIDE);
    const first = grants[0].fencingToken;
    const passes = grants.filter((g) => (g.fencingToken - first) % stride !== 0n);
    const misplaced = grants.filter((g, i) => {
      if ((g.fencingToken - first) % stride === 0n) return false;
      const before = grants[i - 1];
      return before.pid !== g.pid || before.fencingToken !== g.fencingToken - 1n;
    });
    expect(misplaced).toEqual([]);
    expect(passes.length).toBeGreaterThan(0);
    // And the lock went back to Redis, also between the processes.
    const steps = grants.slice(1).map((g, i) => ({ g, before: grants[i] }));
    expect(
      steps.filter(({ g, before }) => g.fencingToken - before.fencingToken >= stride).length,
    ).toBeGreaterThan(0);
    expect(steps.filter(({ g, before }) => g.pid !== before.pid).length).toBeGreaterThan(10);
  }, 40_000);
});
