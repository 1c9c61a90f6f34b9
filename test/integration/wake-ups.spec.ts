import type { Redis } from 'ioredis';
import { waiterChannel } from '../../lib/core/keys/lock-token.js';
import { fixedDelay } from '../../lib/core/waiting/retry.strategies.js';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { LockNotAcquiredError } from '../../lib/errors/lock.errors.js';
import { exited, forkWorker, killAllWorkers, nextMessage } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { sleep, waitFor } from '../support/wait-for.js';
import {
  collectingLogger,
  commandCalls,
  CommandLog,
  gate,
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

const HOLDER_WORKER = 'test/support/workers/lock-holder.worker.ts';

/**
 * A lease far longer than any wait here: the safety re-check a waiter makes when the lease it saw
 * runs out can never be what wakes it, so only a release message (or the retry after
 * subscribing) can.
 */
const LONG_TTL = 30_000;

describe('pub/sub wake-ups', () => {
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

  /** A key held by a client of its own with a long lease, and that lock. */
  async function heldKey(label: string): Promise<{ key: string; holder: RedisLockHandle }> {
    const key = uniqueKey(label);
    const holder = await clients.create(redis.client()).acquire(key, { ttl: LONG_TTL });
    return { key, holder };
  }

  it('loses no wake-up over 2100 hand-overs between 3 processes x 2 waiters', async () => {
    const PROCESSES = 3;
    const WAITERS = 2;
    const GRANTS = 350;
    const total = PROCESSES * WAITERS * GRANTS;
    const key = uniqueKey('handovers');
    const config: LoopConfig = {
      url: redis.url,
      keySets: [[key]],
      waiters: WAITERS,
      grants: GRANTS,
      ttl: LONG_TTL,
      waitTimeout: 60_000,
      prefix: `${key}:`,
    };
    const evalshaBefore = await commandCalls(admin, 'evalsha');

    // A lost wake-up leaves the key free while every waiter sleeps until the 30 s lease it saw
    // would have run out: the run would take 30 s or more instead of a few.
    const { reports: done, elapsed } = await runContendLoop(config, PROCESSES, 25_000);
    expect(done.map((r) => r.grants)).toEqual(Array(PROCESSES).fill(WAITERS * GRANTS));
    expect(Math.max(...done.map((r) => r.maxInside))).toBe(1);
    expect(done.map((r) => r.failedReleases)).toEqual(Array(PROCESSES).fill(0));
    expect(done.flatMap((r) => r.warnings)).toEqual([]);
    expect(elapsed).toBeLessThan(20_000);

    const grants = await grantsOf(admin, config.prefix, key);
    expect(grants).toHaveLength(total);
    // The processes really competed: the lock changed process many times.
    const handovers = grants.filter((g, i) => i > 0 && g.pid !== grants[i - 1].pid).length;
    expect(handovers).toBeGreaterThan(50);
    // Never a stall: the next grant always followed soon (a lost wake-up would leave a gap of up
    // to the 30 s lease, until the safety re-check).
    const gaps = grants.slice(1).map((g, i) => g.at - grants[i].at);
    expect(Math.max(...gaps)).toBeLessThan(2000);
    // Woken by releases, not polling: a few scripts per grant (its attempts and its release).
    const scripts = (await commandCalls(admin, 'evalsha')) - evalshaBefore;
    expect(scripts / total).toBeLessThan(6);
  }, 60_000);

  it('loses no wake-up when 2 processes take turns 2000 times: every hand-over rests on one release waking the other', async () => {
    const PROCESSES = 2;
    const GRANTS = 1000;
    const key = uniqueKey('ping-pong');
    const config: LoopConfig = {
      url: redis.url,
      keySets: [[key]],
      waiters: 1,
      grants: GRANTS,
      ttl: LONG_TTL,
      waitTimeout: 60_000,
      prefix: `${key}:`,
      alternate: { processes: PROCESSES },
    };
    await admin.set(`${config.prefix}active`, PROCESSES);
    // A lost wake-up here stalls both: one sleeps until the 30 s lease it saw would have run
    // out, the other waits for it to take its turn.
    const { reports: done, elapsed } = await runContendLoop(config, PROCESSES, 25_000);
    expect(done.map((r) => r.grants)).toEqual([GRANTS, GRANTS]);
    expect(Math.max(...done.map((r) => r.maxInside))).toBe(1);
    expect(done.flatMap((r) => r.warnings)).toEqual([]);
    expect(elapsed).toBeLessThan(20_000);

    const grants = await grantsOf(admin, config.prefix, key);
    expect(grants).toHaveLength(PROCESSES * GRANTS);
    // Strictly in turns.
    expect(grants.filter((g, i) => i > 0 && g.pid === grants[i - 1].pid)).toEqual([]);
    const gaps = grants.slice(1).map((g, i) => g.at - grants[i].at);
    expect(Math.max(...gaps)).toBeLessThan(2000);
  }, 60_000);

  it('a release between a failed attempt and the subscription is caught by the attempt made after subscribing', async () => {
    const { key, holder } = await heldKey('gap');
    const channel = `lock:{${key}}:released`;
    // The waiter's subscriber is a duplicate() of its connection: hold its SUBSCRIBE back until
    // the holder has released, so the release message goes out while nobody listens.
    const lockRedis = redis.client();
    const subscribing = gate();
    const mayConfirm = gate();
    const duplicate = lockRedis.duplicate.bind(lockRedis);
    lockRedis.duplicate = ((...args: Parameters<Redis['duplicate']>) => {
      const subscriber = duplicate(...args);
      const subscribe = subscriber.subscribe.bind(subscriber) as (
        ...channels: string[]
      ) => Promise<unknown>;
      (subscriber as unknown as { subscribe: typeof subscribe }).subscribe = async (
        ...channels
      ) => {
        subscribing.open();
        await mayConfirm.promise;
        return subscribe(...channels);
      };
      return subscriber;
    }) as Redis['duplicate'];
    const locks = clients.create(lockRedis);
    const log = await CommandLog.start(admin);
    try {
      const waiting = locks.acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 });
      // The waiter subscribes only after its first attempt failed.
      await subscribing.promise;
      await expect(admin.get(holder.redisKey)).resolves.toBe(holder.token);
      expect(await subscriberCount(admin, key)).toBe(0);
      await expect(holder.release()).resolves.toBe(true); // its message reaches nobody
      const releasedAt = nowMs();
      mayConfirm.open();

      const lock = await waiting;
      // Right away, not when the 30 s lease the first attempt saw would have run out.
      expect(nowMs() - releasedAt).toBeLessThan(2000);
      await expect(admin.get(lock.redisKey)).resolves.toBe(lock.token);

      // Server order: failed attempt, release, SUBSCRIBE, then the attempt that got the lock (as
      // the first waiter of its process, it queues: its client's channel, the queue's script, which
      // may run as EVALSHA then EVAL on first use).
      await monitorCaughtUp(admin, log);
      const scripts = log.scriptsOf(lock.token);
      expect(scripts[0]).toBe('acquire');
      expect(new Set(scripts.slice(1))).toEqual(new Set(['acquireFair']));
      const index = (match: (args: string[]) => boolean) => log.commands.findIndex(match);
      const isAcquireOf = (args: string[]) => args[0] === 'evalsha' && args.includes(lock.token);
      const firstAttempt = index(isAcquireOf);
      const release = index((args) => args[0] === 'evalsha' && args.includes(holder.token));
      const subscribe = index(
        (args) => args[0] === 'subscribe' && args[1] === waiterChannel(channel, lock.token),
      );
      const secondAttempt = log.commands.findIndex(
        (args, i) => i > firstAttempt && isAcquireOf(args),
      );
      expect(firstAttempt).toBeGreaterThanOrEqual(0);
      expect(release).toBeGreaterThan(firstAttempt);
      expect(subscribe).toBeGreaterThan(release);
      expect(secondAttempt).toBeGreaterThan(subscribe);
    } finally {
      log.stop();
    }
  });

  it('safety re-check: a waiter gets the lock of a SIGKILLed holder (no release message) within 500 ms after its lease runs out', async () => {
    const ttl = 2000;
    const key = uniqueKey('killed-holder');
    const worker = forkWorker(HOLDER_WORKER, [
      JSON.stringify({ url: redis.url, key, ttl, autoRenew: false }),
    ]);
    const holder = await nextMessage<{ type: string; token: string; before: number }>(
      worker,
      (m) => m.type === 'acquired',
      20_000,
    );
    const log = await CommandLog.start(admin);
    try {
      const waiting = clients
        .create(redis.client())
        .acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 });
      await subscribed(admin, key);
      worker.kill('SIGKILL');
      await exited(worker);

      const lock = await waiting;
      const at = nowMs();
      // Not before the lease of the dead holder ran out (its SET was sent after `before`)...
      expect(at - holder.before).toBeGreaterThanOrEqual(ttl - 5);
      // ...and soon after it.
      expect(at - holder.before).toBeLessThan(ttl + 500);
      // It slept through the lease rather than polling: the attempt before subscribing, the one
      // after, and the one when the lease it saw ran out (one more if a timer fired a hair early).
      await monitorCaughtUp(admin, log);
      expect(log.scriptsOf(lock.token).length).toBeLessThanOrEqual(4);
    } finally {
      log.stop();
    }
  });

  it('one release wakes one waiter of a process, not all of them: 8 local waiters, at most 3 attempts each, in arrival order', async () => {
    const WAITERS = 8;
    const { key, holder } = await heldKey('herd');
    const locks = clients.create(redis.client());
    const log = await CommandLog.start(admin);
    try {
      const order: number[] = [];
      const waiter = async (i: number) => {
        const lock = await locks.acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 });
        order.push(i);
        // A critical section that takes a moment (the scenario, not a wait for something): the
        // next waiter's first attempt finds the lock held, so the release message must wake it.
        await sleep(10);
        await lock.release();
        return lock;
      };
      const first = waiter(0);
      await subscribed(admin, key);
      // The others queue behind the first in this process, without asking Redis.
      const rest = Array.from({ length: WAITERS - 1 }, (_, i) => waiter(i + 1));
      // One subscriber connection for the whole process.
      expect(await subscriberCount(admin, key)).toBe(1);
      await holder.release();
      const handles = await Promise.all([first, ...rest]);
      expect(order).toEqual(Array.from({ length: WAITERS }, (_, i) => i));

      await monitorCaughtUp(admin, log);
      const attempts = handles.map(
        (h) => log.scriptsOf(h.token).filter((name) => name === 'acquire').length,
      );
      // The first: one attempt before subscribing, one after, one when woken. Each later one:
      // one when its turn comes (the lock still held by the one before), one when woken. Had
      // every release woken every waiter, the last would have tried about 8 times.
      expect(attempts[0]).toBeLessThanOrEqual(3);
      for (const n of attempts.slice(1)) expect(n).toBeLessThanOrEqual(2);
      expect(attempts.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(2 * WAITERS + 1);
    } finally {
      log.stop();
    }
  });

  it('with pubSub: false, waits by polling with its retry strategy, without subscribing', async () => {
    const { key, holder } = await heldKey('no-pubsub');
    const log = await CommandLog.start(admin);
    try {
      const locks = clients.create(redis.client(), { pubSub: false });
      const waiting = locks.acquire(key, { waitTimeout: 5000, retry: fixedDelay(20) });
      const attempts = () =>
        log.mentioning(holder.redisKey).filter((args) => args[0] === 'evalsha').length;
      await waitFor(() => attempts() >= 4, { message: 'the waiter to poll' });
      await holder.release();
      const releasedAt = nowMs();
      const lock = await waiting;
      expect(nowMs() - releasedAt).toBeLessThan(500);
      await expect(admin.get(lock.redisKey)).resolves.toBe(lock.token);
      await monitorCaughtUp(admin, log);
      expect(log.commands.filter((args) => args[0] === 'subscribe')).toEqual([]);
    } finally {
      log.stop();
    }
  });

  it('a subscriber Redis refuses (ACL without SUBSCRIBE): warns once, falls back to polling, still gets the lock', async () => {
    // May run every command, including PUBLISH from the scripts, but may not subscribe.
    await admin.call(
      'ACL',
      'SETUSER',
      'no-subscribe',
      'on',
      '>secret',
      '~*',
      '&*',
      '+@all',
      '-subscribe',
      '-psubscribe',
      '-ssubscribe',
    );
    const logger = collectingLogger();
    const locks = clients.create(redis.client({ username: 'no-subscribe', password: 'secret' }), {
      logger,
    });
    for (const label of ['acl-1', 'acl-2']) {
      const { key, holder } = await heldKey(label);
      const waiting = locks.acquire(key, { waitTimeout: 5000, retry: fixedDelay(20) });
      await waitFor(() => logger.messages.length > 0, { message: 'the warning' });
      await holder.release();
      const lock = await waiting;
      await expect(admin.get(lock.redisKey)).resolves.toBe(lock.token);
      await lock.release();
    }
    expect(logger.messages).toEqual([expect.stringContaining('Pub/sub wake-ups are unavailable')]);
    expect(logger.messages[0]).toContain('NOPERM');
  });

  describe('giving up mid-wait, with pub/sub', () => {
    it('at the deadline: LockNotAcquiredError (aborted: false) on time, and the subscription is dropped', async () => {
      const { key } = await heldKey('deadline');
      const locks = clients.create(redis.client());
      const attempt = rejectionOf(locks.acquire(key, { waitTimeout: 400 }));
      await subscribed(admin, key);
      const { error, ms } = await attempt;
      expect(error).toBeInstanceOf(LockNotAcquiredError);
      expect(error).toMatchObject({ key, aborted: false });
      expect(ms).toBeGreaterThanOrEqual(398);
      expect(ms).toBeLessThan(1500);
      await waitFor(async () => (await subscriberCount(admin, key)) === 0, {
        message: 'the release channel to have no subscriber',
      });
    });

    it('on abort: LockNotAcquiredError (aborted: true) within 500 ms, the subscription is dropped, and a new waiter is still woken', async () => {
      const { key, holder } = await heldKey('abort');
      const locks = clients.create(redis.client());
      const controller = new AbortController();
      const attempt = rejectionOf(
        locks.acquire(key, { waitTimeout: 10_000, signal: controller.signal }),
      );
      await subscribed(admin, key);
      const abortedAt = nowMs();
      controller.abort();
      const { error } = await attempt;
      expect(nowMs() - abortedAt).toBeLessThan(500);
      expect(error).toBeInstanceOf(LockNotAcquiredError);
      expect(error).toMatchObject({ key, aborted: true });
      await waitFor(async () => (await subscriberCount(admin, key)) === 0, {
        message: 'the release channel to have no subscriber',
      });

      // The shared subscriber still serves the next wait on the same channel.
      const waiting = locks.acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 });
      await subscribed(admin, key);
      await holder.release();
      const releasedAt = nowMs();
      const lock = await waiting;
      expect(nowMs() - releasedAt).toBeLessThan(1000);
      await lock.release();
      await waitFor(async () => (await subscriberCount(admin, key)) === 0, {
        message: 'the release channel to have no subscriber',
      });
    });
  });
});
