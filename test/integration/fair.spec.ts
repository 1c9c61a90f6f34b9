import type { Redis } from 'ioredis';
import { waiterChannel } from '../../lib/core/keys/lock-token.js';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { FENCE_STRIDE } from '../../lib/redis-lock.constants.js';
import { LockNotAcquiredError } from '../../lib/errors/lock.errors.js';
import { exited, killAllWorkers } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import {
  CommandLog,
  fairQueue,
  LockAgent,
  LockClients,
  monitorCaughtUp,
  nowMs,
  processState,
  rejectionOf,
  runContendLoop,
  subscribed,
  uniqueKey,
} from './helpers.js';
import { grantsOf, type LoopConfig } from './workers/protocol.js';

/** Longer than any test here: only releases and queue spots decide who gets the lock. */
const LONG_TTL = 30_000;

describe('fair mode: the lock goes to waiters in arrival order, across processes', () => {
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

  const queueKeys = (key: string) => [`lock:{${key}}:queue`, `lock:{${key}}:timeouts`];

  async function queued(key: string, length: number): Promise<string[]> {
    let queue: string[] = [];
    await waitFor(async () => (queue = await fairQueue(admin, key)).length === length, {
      timeout: 10_000,
      interval: 5,
      message: () => `${length} waiter(s) in the queue of ${key} (has ${queue.length})`,
    });
    return queue;
  }

  it('grants in enqueue order to 6 waiters spread over 3 processes (two per process)', async () => {
    const key = uniqueKey('order');
    const orderKey = `${key}:granted`;
    const agents = await Promise.all([0, 1, 2].map(() => LockAgent.start(redis.url)));
    const holder = await clients.create(redis.client(), { fair: true }).acquire(key, {
      ttl: LONG_TTL,
    });
    // Interleaved, so neither process order nor start order within a process decides.
    const lineUp = [
      { id: 'w1', agent: agents[1] },
      { id: 'w2', agent: agents[0] },
      { id: 'w3', agent: agents[2] },
      { id: 'w4', agent: agents[0] },
      { id: 'w5', agent: agents[2] },
      { id: 'w6', agent: agents[1] },
    ];
    for (const [i, { id, agent }] of lineUp.entries()) {
      agent.send({
        type: 'acquire',
        id,
        key,
        options: { fair: true, ttl: LONG_TTL, waitTimeout: 20_000 },
        record: orderKey,
        releaseAtOnce: true,
      });
      // The next one starts only once this one visibly has its place.
      await queued(key, i + 1);
    }
    await expect(holder.release()).resolves.toBe(true);

    const replies = await Promise.all(
      lineUp.map(({ id, agent }) => agent.reply(id, ['granted', 'failed'])),
    );
    expect(replies.map((r) => r.type)).toEqual(Array(lineUp.length).fill('granted'));
    await expect(admin.lrange(orderKey, 0, -1)).resolves.toEqual(lineUp.map((w) => w.id));
    // Each grant's fencing token is above the one before.
    const tokens = replies.map((r) => BigInt((r as { fencingToken: string }).fencingToken));
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
    // Nothing left behind: every waiter left the queues when it got the lock.
    await expect(admin.exists(...queueKeys(key), `lock:{${key}}`)).resolves.toBe(0);
  });

  it('keeps enqueue order when neighbours in the queue share a process: the one behind is passed the lock there, the others get it through Redis', async () => {
    const key = uniqueKey('order-neighbours');
    const orderKey = `${key}:granted`;
    const agents = await Promise.all([0, 1, 2].map(() => LockAgent.start(redis.url)));
    const holder = await clients.create(redis.client(), { fair: true }).acquire(key, {
      ttl: LONG_TTL,
    });
    // w2 stands right behind w1 in the same process, and w4 behind w3; w5 follows w4 but in
    // another process.
    const lineUp = [
      { id: 'w1', agent: agents[0] },
      { id: 'w2', agent: agents[0] },
      { id: 'w3', agent: agents[1] },
      { id: 'w4', agent: agents[1] },
      { id: 'w5', agent: agents[0] },
      { id: 'w6', agent: agents[2] },
    ];
    for (const [i, { id, agent }] of lineUp.entries()) {
      agent.send({
        type: 'acquire',
        id,
        key,
        options: { fair: true, ttl: LONG_TTL, waitTimeout: 20_000 },
        record: orderKey,
        releaseAtOnce: true,
      });
      await queued(key, i + 1);
    }
    await expect(holder.release()).resolves.toBe(true);

    const replies = await Promise.all(
      lineUp.map(({ id, agent }) => agent.reply(id, ['granted', 'failed'])),
    );
    expect(replies.map((r) => r.type)).toEqual(Array(lineUp.length).fill('granted'));
    await expect(admin.lrange(orderKey, 0, -1)).resolves.toEqual(lineUp.map((w) => w.id));
    const granted = replies as { token: string; fencingToken: string }[];
    const tokens = granted.map((r) => BigInt(r.fencingToken));
    // Passed in the process: the same lock in Redis, the next fencing token.
    for (const i of [1, 3]) {
      expect(granted[i].token).toBe(granted[i - 1].token);
      expect(tokens[i]).toBe(tokens[i - 1] + 1n);
    }
    // Through Redis: a token of its own, and a fencing token a whole step above the last one
    // Redis issued (w1's, w3's, w5's).
    const fromRedis = [0, 2, 4, 5];
    for (const [n, i] of fromRedis.entries()) {
      if (n === 0) continue;
      expect(granted[i].token).not.toBe(granted[i - 1].token);
      expect(tokens[i] - tokens[fromRedis[n - 1]]).toBeGreaterThanOrEqual(BigInt(FENCE_STRIDE));
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
    await expect(admin.exists(...queueKeys(key), `lock:{${key}}`)).resolves.toBe(0);
  });

  it('a fair waiter whose process already has a fair waiter for the key subscribes first and joins the queue with a single attempt', async () => {
    const key = uniqueKey('one-attempt');
    const locks = clients.create(redis.client(), { fair: true });
    // The fair acquire script loaded, so each attempt below is one EVALSHA in the log.
    await (await locks.acquire(uniqueKey('warm-up'))).release();
    const holder = await locks.acquire(key, { ttl: LONG_TTL });
    const log = await CommandLog.start(admin);
    try {
      const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
      const first = locks.acquire(key, opts);
      // Subscribed: past its first attempt, it now waits in this process.
      await subscribed(admin, key, 1);
      const second = locks.acquire(key, opts);
      await queued(key, 2);
      await expect(holder.release()).resolves.toBe(true);
      const a = await first;
      await expect(a.release()).resolves.toBe(true);
      const b = await second;
      await expect(b.release()).resolves.toBe(true);
      await monitorCaughtUp(admin, log);
      const attempts = (queueToken: string | undefined) =>
        log.scriptsOf(queueToken!).filter((name) => name === 'acquireFair').length;
      // The first: an attempt, then another once subscribed. The second: only the one.
      expect(attempts(a.queueToken)).toBe(2);
      expect(attempts(b.queueToken)).toBe(1);
    } finally {
      log.stop();
    }
  });

  it("a client's queued waiters share one subscription per key, and a hand-over wakes only the waiter it names", async () => {
    const key = uniqueKey('shared-channel');
    const locks = clients.create(redis.client(), { fair: true });
    await (await locks.acquire(uniqueKey('warm-up'))).release();
    // Of another client: its release cannot pass the lock to these waiters, it hands it over.
    const holder = await clients.create(redis.client(), { fair: true }).acquire(key, {
      ttl: LONG_TTL,
    });
    const log = await CommandLog.start(admin);
    try {
      const opts = { ttl: LONG_TTL, waitTimeout: 10_000 };
      const settled: string[] = [];
      const waiters: Promise<RedisLockHandle>[] = [];
      for (const name of ['w1', 'w2', 'w3']) {
        waiters.push(
          locks.acquire(key, opts).then((handle) => {
            settled.push(name);
            return handle;
          }),
        );
        await queued(key, waiters.length);
      }
      // The holder releases in Redis, which hands the lock to w1 and says so on the channel all
      // three listen on.
      await expect(holder.release()).resolves.toBe(true);
      const w1 = await waiters[0];
      await expect(admin.get(w1.redisKey)).resolves.toBe(w1.token);
      // A waiter that took the message for its own would have its lock by the next macrotask.
      await new Promise((resolve) => setImmediate(resolve));
      expect(settled).toEqual(['w1']);
      await expect(fairQueue(admin, key)).resolves.toHaveLength(2);

      await expect(w1.release()).resolves.toBe(true);
      const w2 = await waiters[1];
      await expect(w2.release()).resolves.toBe(true);
      const w3 = await waiters[2];
      await expect(w3.release()).resolves.toBe(true);
      expect(settled).toEqual(['w1', 'w2', 'w3']);

      await monitorCaughtUp(admin, log);
      const channel = waiterChannel(`lock:{${key}}:released`, w1.queueToken!);
      const subscribes = log.commands.filter(
        (args) => args[0] === 'subscribe' && args.includes(channel),
      );
      expect(subscribes).toHaveLength(1);
      for (const waiter of [w2, w3]) {
        expect(waiterChannel(`lock:{${key}}:released`, waiter.queueToken!)).toBe(channel);
      }
    } finally {
      log.stop();
    }
  });

  it('keeps mutual exclusion and rising fencing tokens over 600 fair hand-overs between 3 processes x 2 waiters', async () => {
    const PROCESSES = 3;
    const WAITERS = 2;
    const GRANTS = 100;
    const key = uniqueKey('fair-stress');
    const config: LoopConfig = {
      url: redis.url,
      keySets: [[key]],
      waiters: WAITERS,
      grants: GRANTS,
      ttl: LONG_TTL,
      waitTimeout: 60_000,
      fair: true,
      // Waiters re-check every 10 s: a lost hand-over or wake-up stalls everyone that long.
      fairQueueTimeout: 30_000,
      prefix: `${key}:`,
    };
    const { reports, elapsed } = await runContendLoop(config, PROCESSES, 25_000);
    expect(reports.map((r) => r.grants)).toEqual(Array(PROCESSES).fill(WAITERS * GRANTS));
    expect(Math.max(...reports.map((r) => r.maxInside))).toBe(1);
    expect(reports.map((r) => r.failedReleases)).toEqual(Array(PROCESSES).fill(0));
    expect(reports.flatMap((r) => r.warnings)).toEqual([]);
    expect(elapsed).toBeLessThan(20_000);

    const grants = await grantsOf(admin, config.prefix, key);
    expect(grants).toHaveLength(PROCESSES * WAITERS * GRANTS);
    for (let i = 1; i < grants.length; i++) {
      if (grants[i].fencingToken <= grants[i - 1].fencingToken) {
        throw new Error(`fencing token #${i} is not above #${i - 1}`);
      }
    }
    const gaps = grants.slice(1).map((g, i) => g.at - grants[i].at);
    expect(Math.max(...gaps)).toBeLessThan(5000);
    await expect(admin.exists(...queueKeys(key), `lock:{${key}}`)).resolves.toBe(0);
  }, 60_000);

  it('skips a SIGKILLed waiter once its spot (and a lease handed to it) times out (fairQueueTimeout 600 ms), and drops it from the queue', async () => {
    const fairQueueTimeout = 600;
    const key = uniqueKey('killed-waiter');
    const [timeouts] = queueKeys(key).slice(1);
    const holder = await clients
      .create(redis.client(), { fair: true, fairQueueTimeout })
      .acquire(key, { ttl: LONG_TTL });
    const first = await LockAgent.start(redis.url, { fair: true, fairQueueTimeout });
    first.send({
      type: 'acquire',
      id: 'a',
      key,
      options: { ttl: LONG_TTL, waitTimeout: 20_000 },
    });
    const [deadToken] = await queued(key, 1);
    const second = clients
      .create(redis.client(), { fair: true, fairQueueTimeout })
      .acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 });
    await queued(key, 2);

    first.child.kill('SIGKILL');
    await exited(first.child);
    // How long the dead waiter's spot still lasts, on Redis' clock.
    const [deadline, [seconds, micros]] = await Promise.all([
      admin.zscore(timeouts, deadToken),
      admin.time(),
    ]);
    const spotLeft =
      Number(deadline) - (Number(seconds) * 1000 + Math.floor(Number(micros) / 1000));
    const measuredAt = nowMs();
    expect(spotLeft).toBeGreaterThan(0);
    expect(spotLeft).toBeLessThanOrEqual(fairQueueTimeout);
    // The release hands the lock to the first in line, the dead waiter, for what is left of its
    // spot, which nobody takes up; the second must not barge in meanwhile.
    await holder.release();
    const releasedAt = nowMs();

    const lock = await second;
    const at = nowMs();
    // Not before the dead waiter's spot lapsed...
    expect(at - measuredAt).toBeGreaterThanOrEqual(spotLeft - 5);
    // ...and soon after it and the hand-over lease: the second re-checks every
    // fairQueueTimeout / 3.
    expect(at - releasedAt).toBeLessThan(fairQueueTimeout + fairQueueTimeout / 3 + 800);
    await expect(admin.get(lock.redisKey)).resolves.toBe(lock.token);
    await expect(admin.zscore(`lock:{${key}}:queue`, deadToken)).resolves.toBeNull();
    await expect(admin.zscore(timeouts, deadToken)).resolves.toBeNull();
    await lock.release();
    await expect(admin.exists(...queueKeys(key))).resolves.toBe(0);
  });

  it('a process that dies holding a lock passed to it in the process does not block the queue: its place lapses with its spot, the lock with its ttl', async () => {
    const fairQueueTimeout = 600;
    const ttl = 400;
    const key = uniqueKey('killed-holder');
    const options = { fair: true, fairQueueTimeout };
    const holder = await clients.create(redis.client(), options).acquire(key, { ttl: LONG_TTL });
    // a then b in one process: a gets the lock from Redis and passes it to b there.
    const agent = await LockAgent.start(redis.url, options);
    agent.send({ type: 'acquire', id: 'a', key, options: { ttl, waitTimeout: 20_000 } });
    await queued(key, 1);
    agent.send({ type: 'acquire', id: 'b', key, options: { ttl, waitTimeout: 20_000 } });
    const [, placeOfB] = await queued(key, 2);
    const next = clients
      .create(redis.client(), options)
      .acquire(key, { ttl: LONG_TTL, waitTimeout: 10_000 });
    await queued(key, 3);

    await holder.release();
    const a = await agent.reply('a', ['granted']);
    agent.send({ type: 'release', id: 'a' });
    const b = await agent.reply('b', ['granted']);
    expect((b as { token: string }).token).toBe((a as { token: string }).token); // passed there
    // b's place stays while it holds the lock: its release would drop it. It dies instead.
    await expect(fairQueue(admin, key)).resolves.toContain(placeOfB);
    agent.child.kill('SIGKILL');
    await exited(agent.child);
    const killedAt = nowMs();

    const lock = await next;
    // Soon after the lock's ttl and b's spot lapsed: the next re-checks every fairQueueTimeout / 3.
    expect(nowMs() - killedAt).toBeLessThan(fairQueueTimeout + fairQueueTimeout / 3 + 800);
    await expect(admin.zscore(`lock:{${key}}:queue`, placeOfB)).resolves.toBeNull();
    await lock.release();
    await expect(admin.exists(...queueKeys(key))).resolves.toBe(0);
  });

  it('a waiter that gives up (deadline or abort) leaves the queue at once, and the one behind it is not held up', async () => {
    const key = uniqueKey('give-up');
    const [queue, timeouts] = queueKeys(key);
    // The default fairQueueTimeout (5 s): had the quitters stayed in line, the last waiter
    // would wait seconds for their spots to lapse.
    const locks = clients.create(redis.client(), { fair: true });
    const holder = await locks.acquire(key, { ttl: LONG_TTL });

    const byDeadline = rejectionOf(locks.acquire(key, { waitTimeout: 1500 }));
    const [deadlineToken] = await queued(key, 1);
    const controller = new AbortController();
    const byAbort = rejectionOf(
      locks.acquire(key, { waitTimeout: 20_000, signal: controller.signal }),
    );
    const [, abortToken] = await queued(key, 2);
    const last = locks.acquire(key, { ttl: LONG_TTL, waitTimeout: 20_000 });
    const [, , lastToken] = await queued(key, 3);

    controller.abort();
    const aborted = await byAbort;
    expect(aborted.error).toBeInstanceOf(LockNotAcquiredError);
    expect(aborted.error).toMatchObject({ aborted: true });
    // Gone by the time the rejection arrives, from both sorted sets.
    await expect(admin.zscore(queue, abortToken)).resolves.toBeNull();
    await expect(admin.zscore(timeouts, abortToken)).resolves.toBeNull();

    const timedOut = await byDeadline;
    expect(timedOut.error).toBeInstanceOf(LockNotAcquiredError);
    expect(timedOut.error).toMatchObject({ aborted: false });
    await expect(admin.zscore(queue, deadlineToken)).resolves.toBeNull();
    await expect(admin.zscore(timeouts, deadlineToken)).resolves.toBeNull();
    await expect(fairQueue(admin, key)).resolves.toEqual([lastToken]);

    await holder.release();
    const releasedAt = nowMs();
    const lock = await last;
    // Handed the lock by the release itself, not found free at a re-check (every 1.7 s).
    expect(nowMs() - releasedAt).toBeLessThan(1000);
    expect(lock.token).toBe(lastToken);
    await expect(admin.exists(queue, timeouts)).resolves.toBe(0);
  });

  it('a waiter handed the lock that gives up before it hears of it passes the lock on to the next one within 1 s (not after the 20 s hand-over lease)', async () => {
    const key = uniqueKey('handed-then-gone');
    // The first waiter's subscriber loses every message (as across a reconnect), so it does not
    // learn that a release handed it the lock, and sleeps until its next re-check (~6.7 s).
    const deafRedis = redis.client();
    const duplicate = deafRedis.duplicate.bind(deafRedis);
    deafRedis.duplicate = ((...args: Parameters<Redis['duplicate']>) => {
      const subscriber = duplicate(...args);
      const emit = subscriber.emit.bind(subscriber);
      subscriber.emit = (event: string | symbol, ...rest: unknown[]) =>
        event === 'message' || event === 'messageBuffer' ? false : emit(event, ...rest);
      return subscriber;
    }) as Redis['duplicate'];
    const options = { fair: true, fairQueueTimeout: 20_000 };
    const holders = clients.create(redis.client(), options);
    // The fair acquire script loaded, so each attempt below is one EVALSHA in the log.
    await (await holders.acquire(uniqueKey('warm-up'))).release();
    const holder = await holders.acquire(key, { ttl: LONG_TTL });
    const log = await CommandLog.start(admin);
    const controller = new AbortController();
    const deaf = rejectionOf(
      clients
        .create(deafRedis, options)
        .acquire(key, { ttl: LONG_TTL, waitTimeout: 20_000, signal: controller.signal }),
    );
    const [deafToken] = await queued(key, 1);
    // Asleep: its attempt after subscribing is done (had it come after the release below, it
    // would have found the lock handed to it and taken it).
    try {
      await waitFor(() => log.scriptsOf(deafToken).length >= 2, {
        message: 'the first waiter to try again after subscribing',
      });
    } finally {
      log.stop();
    }
    const next = clients
      .create(redis.client(), options)
      .acquire(key, { ttl: LONG_TTL, waitTimeout: 20_000 });
    const [, nextToken] = await queued(key, 2);

    await holder.release();
    // Handed to the first in line, which does not know it.
    await expect(admin.get(`lock:{${key}}`)).resolves.toBe(deafToken);
    controller.abort();
    const abortedAt = nowMs();
    const { error } = await deaf;
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(error).toMatchObject({ aborted: true });

    const lock = await next;
    // Passed on by the one that gave up, not after the hand-over lease (20 s).
    expect(nowMs() - abortedAt).toBeLessThan(1000);
    expect(lock.token).toBe(nextToken);
    await expect(admin.get(lock.redisKey)).resolves.toBe(lock.token);
    // It was handed the key for what was left of its spot, then took it up with its own ttl.
    await waitFor(async () => (await admin.pttl(lock.redisKey)) > 25_000, {
      message: 'the lease to be brought to the waiter ttl',
    });
    await expect(fairQueue(admin, key)).resolves.toEqual([]);
  });

  it('tryAcquire does not barge past a queued waiter, even while the key is free, and takes no place in the queue', async () => {
    const key = uniqueKey('no-barging');
    const locks = clients.create(redis.client(), { fair: true });
    // Its spot outlasts the test while it is frozen.
    const waiter = await LockAgent.start(redis.url, { fair: true, fairQueueTimeout: 20_000 });
    // A release would hand the lock straight to the first waiter; a lease that runs out (a
    // crashed holder) leaves the key free with a waiter still in line.
    const holder = await locks.acquire(key, { ttl: LONG_TTL });
    waiter.send({
      type: 'acquire',
      id: 'w',
      key,
      options: { ttl: LONG_TTL, waitTimeout: 20_000 },
      releaseAtOnce: true,
    });
    const [waiterToken] = await queued(key, 1);
    // Freeze the queued waiter, then let the holder's lease run out (cut short to 1 ms, as if
    // its process had died long ago): the key is free, but it is the frozen waiter's turn.
    waiter.child.kill('SIGSTOP');
    await waitFor(() => processState(waiter.pid) === 'T', { message: 'the waiter to stop' });
    await admin.pexpire(holder.redisKey, 1);
    await waitFor(async () => (await admin.exists(holder.redisKey)) === 0, {
      message: "the holder's lease to run out",
    });

    await expect(locks.tryAcquire(key)).resolves.toBeNull();
    await expect(locks.acquire(key, { waitTimeout: 0 })).rejects.toBeInstanceOf(
      LockNotAcquiredError,
    );
    await expect(fairQueue(admin, key)).resolves.toEqual([waiterToken]);
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);

    // Woken by the reminder those attempts sent it (the key is free and it is first).
    waiter.child.kill('SIGCONT');
    await expect(waiter.reply('w', ['granted', 'failed'])).resolves.toMatchObject({
      type: 'granted',
      token: waiterToken,
    });
    // Queue empty and key free (the waiter released at once): now a single try gets it.
    await expect(admin.exists(`lock:{${key}}:queue`)).resolves.toBe(0);
    const lock = await locks.tryAcquire(key);
    expect(lock).not.toBeNull();
    await expect(admin.get(`lock:{${key}}`)).resolves.toBe(lock!.token);
  });
});
