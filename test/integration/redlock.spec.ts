/**
 * Redlock on five independent redis-server masters, under the faults it exists for: masters
 * killed (SIGKILL) or frozen (SIGSTOP), keys vanishing from a majority, and two processes racing
 * for the same key for thousands of rounds.
 *
 * The masters are started once; a test that kills or pauses some has them restarted or resumed
 * in afterEach. Every test makes its own ioredis connections (closed in afterEach), created before
 * any fault so a killed master's connection is one that was live, as in production.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisLockClientOptions } from '../../lib/core/redis-lock-client.options.js';
import { LockScripts } from '../../lib/core/redis/scripts/index.js';
import { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { LockLostError, LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { FAIR_UNAVAILABLE_WARNING } from '../../lib/redis-lock.messages.js';
import { exited, forkWorker, killAllWorkers, nextMessage } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import {
  collectingLogger,
  CommandLog,
  commandCalls,
  monitorCaughtUp,
  nowMs,
  rejectionOf,
  uniqueKey,
} from './helpers.js';
import type { RedlockLoopConfig, RedlockLoopReport } from './workers/redlock-protocol.js';

const HOST = '127.0.0.1';
const MASTERS = 5;
const LOOP_WORKER = 'test/integration/workers/redlock-loop.worker.ts';

/** How an error names a master that failed: `host:port: reason`. */
const failedNode = (node: RedisServer): string => `${HOST}:${node.port}: `;

describe('Redlock on 5 masters: faults', () => {
  let masters: RedisServer[];
  /** A plain Redis that is none of the masters: the race's witness. */
  let witness: RedisServer;
  const killed = new Set<RedisServer>();
  const paused = new Set<RedisServer>();
  /** Every ioredis connection a test made, closed after it. */
  const connections: Redis[] = [];
  const lockClients: RedisLockClient[] = [];

  /**
   * A connection of this test. `maxRetriesPerRequest: 1` fails a command to a dead master rather
   * than queueing it through ~20 reconnects; `disconnectTimeout: 0` keeps a disconnect of a
   * reconnecting client from arming a timer that would hold the test process open.
   */
  const connect = (node: RedisServer, options: RedisOptions = {}): Redis => {
    const redis = new Redis({
      host: HOST,
      port: node.port,
      maxRetriesPerRequest: 1,
      disconnectTimeout: 0,
      ...options,
    });
    redis.on('error', () => undefined);
    connections.push(redis);
    return redis;
  };
  /** Connections to each master, for the test's own reads (never of a dead or frozen master). */
  let admins: Redis[];

  /** A Redlock client on its own five connections, connected before it is returned. */
  const redlockClient = async (
    redlock: { nodeTimeout?: number; driftFactor?: number } = {},
    options: Omit<RedisLockClientOptions, 'redis' | 'redlock'> = {},
  ): Promise<RedisLockClient> => {
    const clients = masters.map((node) => connect(node));
    await Promise.all(clients.map((redis) => redis.ping()));
    const locks = new RedisLockClient({
      logger: { warn: () => undefined },
      ...options,
      redlock: { clients, ...redlock },
    });
    lockClients.push(locks);
    return locks;
  };

  /** SIGKILLs the masters and resolves once they are gone; afterEach restarts them. */
  const kill = async (victims: RedisServer[]): Promise<void> => {
    for (const node of victims) {
      killed.add(node);
      node.kill('SIGKILL');
    }
    await Promise.all(victims.map((node) => node.exited));
  };
  const pause = async (victims: RedisServer[]): Promise<void> => {
    for (const node of victims) paused.add(node);
    await Promise.all(victims.map((node) => node.pause()));
  };
  const resume = async (victims: RedisServer[]): Promise<void> => {
    await Promise.all(victims.map((node) => node.resume()));
    for (const node of victims) paused.delete(node);
  };

  /** Which of `nodes` have the lock key of `key` (default prefix). */
  const holdersOf = async (nodes: RedisServer[], key: string): Promise<RedisServer[]> => {
    const has = await Promise.all(
      nodes.map(async (node) => (await admin(node).exists(`lock:{${key}}`)) === 1),
    );
    return nodes.filter((_, i) => has[i]);
  };
  const admin = (node: RedisServer): Redis => admins[masters.indexOf(node)];

  beforeAll(async () => {
    masters = await Promise.all(Array.from({ length: MASTERS }, () => startRedis()));
    witness = await startRedis();
  });
  beforeEach(async () => {
    admins = masters.map((node) => connect(node));
    await Promise.all(admins.map((redis) => redis.ping()));
  });
  afterEach(async () => {
    await killAllWorkers();
    await Promise.all(lockClients.splice(0).map((locks) => locks.close().catch(() => undefined)));
    for (const redis of connections.splice(0)) redis.disconnect();
    await resume([...paused]);
    await Promise.all([...killed].map((node) => node.restart()));
    killed.clear();
  });
  afterAll(async () => {
    await killAllWorkers();
    await stopAllRedis();
  });

  describe('masters killed', () => {
    it('grants with 2 of 5 killed: a live lease, the key on the 3 live masters, exclusion, and release frees them', async () => {
      // Generous: on a loaded machine a slow live master must not count as failed (3 of 3 needed).
      const locks = await redlockClient({ nodeTimeout: 250 });
      const other = await redlockClient({ nodeTimeout: 250 });
      const dead = [masters[0], masters[3]];
      const live = masters.filter((node) => !dead.includes(node));
      await kill(dead);

      const key = uniqueKey('two-killed');
      const ttl = 10_000;
      const lock = await locks.acquire(key, { ttl });
      expect(lock.isHeld()).toBe(true);
      expect(lock.fencingToken).toBeGreaterThan(0n);
      expect(await holdersOf(live, key)).toEqual(live);
      for (const node of live) {
        expect(await admin(node).get(`lock:{${key}}`)).toBe(lock.token);
        const pttl = await admin(node).pttl(`lock:{${key}}`);
        expect(pttl).toBeGreaterThan(0);
        expect(pttl).toBeLessThanOrEqual(ttl);
      }
      expect(await locks.isLocked(key)).toBe(true);
      // Still exclusive: another client finds it busy (not unavailable) on the 3 live masters.
      expect(await other.tryAcquire(key, { ttl })).toBeNull();

      expect(await lock.release()).toBe(true);
      expect(lock.isHeld()).toBe(false);
      expect(await holdersOf(live, key)).toEqual([]);
      expect(await locks.isLocked(key)).toBe(false);
      const next = await other.tryAcquire(key, { ttl });
      expect(next).not.toBeNull();
      expect(next!.fencingToken).toBeGreaterThan(lock.fencingToken);
      await next!.release();
    });

    it('fails cleanly with 3 of 5 killed: LockUnavailableError naming the dead masters, no token, nothing left on the live ones', async () => {
      const locks = await redlockClient({ nodeTimeout: 250 });
      const dead = [masters[0], masters[2], masters[4]];
      const live = masters.filter((node) => !dead.includes(node));
      // MONITOR on a live master shows the token the failed attempt sent.
      const log = await CommandLog.start(connect(live[0]));
      await kill(dead);

      const key = uniqueKey('three-killed');
      const attempt = await rejectionOf(locks.tryAcquire(key, { ttl: 10_000 }));
      expect(attempt.error).toBeInstanceOf(LockUnavailableError);
      // The failed attempt was undone on the masters that granted it before the call returned.
      expect(await holdersOf(live, key)).toEqual([]);

      const { message } = attempt.error;
      expect(message).toContain('majority (3 of 5)');
      for (const node of dead) expect(message).toContain(failedNode(node));
      for (const node of live) expect(message).not.toContain(`${HOST}:${node.port}`);
      await monitorCaughtUp(admin(live[0]), log);
      const sent = log.mentioning(`lock:{${key}}`).find((args) => /^eval/i.test(args[0]));
      expect(sent).toBeDefined();
      const token = sent![3 + Number(sent![2])];
      expect(token).toMatch(/^[0-9a-f]{48}$/);
      expect(message).not.toContain(token);
      log.stop();

      // A waiting acquire fails the same way at once, rather than polling for its waitTimeout.
      const waiting = await rejectionOf(locks.acquire(key, { ttl: 10_000, waitTimeout: 5_000 }));
      expect(waiting.error).toBeInstanceOf(LockUnavailableError);
      expect(waiting.ms).toBeLessThan(2_000);
      expect(await holdersOf(live, key)).toEqual([]);
      // And a check cannot tell either.
      expect((await rejectionOf(locks.isLocked(key))).error).toBeInstanceOf(LockUnavailableError);
    });
  });

  it('keeps each acquire bounded by the node timeout while one master is frozen (SIGSTOP)', async () => {
    const nodeTimeout = 50;
    const locks = await redlockClient({ nodeTimeout });
    const other = await redlockClient({ nodeTimeout });
    const frozen = masters[1];
    await pause([frozen]);

    const key = uniqueKey('frozen');
    const acquires: number[] = [];
    const releases: number[] = [];
    for (let i = 0; i < 8; i++) {
      let started = nowMs();
      const lock = await locks.acquire(key, { ttl: 5_000 });
      acquires.push(nowMs() - started);
      expect(lock.isHeld()).toBe(true);
      if (i === 0) {
        // Busy, not unavailable: the 4 live masters answer for the holder.
        started = nowMs();
        expect(await other.tryAcquire(key, { ttl: 5_000 })).toBeNull();
        expect(nowMs() - started).toBeLessThan(6 * nodeTimeout);
      }
      started = nowMs();
      expect(await lock.release()).toBe(true);
      releases.push(nowMs() - started);
    }
    // Every call waited for the frozen master's timeout (it never answers), and no longer than
    // that plus scheduling: far from the 2 s a single Redis is given.
    expect(Math.min(...acquires)).toBeGreaterThanOrEqual(nodeTimeout - 5);
    expect(Math.max(...acquires)).toBeLessThan(6 * nodeTimeout);
    expect(Math.max(...releases)).toBeLessThan(6 * nodeTimeout);

    // Thawed, the frozen master runs its backlog in order: each grant, then its release.
    await resume([frozen]);
    await waitFor(async () => (await admin(frozen).exists(`lock:{${key}}`)) === 0, {
      message: `the thawed master to run the queued releases of ${key}`,
    });
  });

  it('does not grant a lock whose lease ran out while the masters answered, and undoes it', async () => {
    const nodeTimeout = 600;
    // lease = ttl - floor(ttl x driftFactor) - 2 = 498 ms: shorter than the wait for a frozen
    // master, while the keys themselves would live 5000 ms; long enough that five masters answer
    // within it on a loaded machine (the control below).
    const ttl = 5_000;
    const locks = await redlockClient({ nodeTimeout, driftFactor: 0.9 });
    const key = uniqueKey('validity');

    // Control: with every master answering at once, the same options give a lock.
    const control = await locks.tryAcquire(key, { ttl });
    expect(control).not.toBeNull();
    expect(await control!.release()).toBe(true);

    const frozen = masters[2];
    await pause([frozen]);
    const started = nowMs();
    // A majority granted it, but only after the frozen master's 600 ms: nothing left to hold.
    expect(await locks.tryAcquire(key, { ttl })).toBeNull();
    const ms = nowMs() - started;
    expect(ms).toBeGreaterThanOrEqual(nodeTimeout - 5);
    expect(ms).toBeLessThan(ttl);
    // Undone before the call returned, not left to block others for the keys' 5000 ms.
    const live = masters.filter((node) => node !== frozen);
    expect(await holdersOf(live, key)).toEqual([]);
  });

  it('counts answers that arrived during an event-loop stall longer than the node timeout', async () => {
    const locks = await redlockClient({ nodeTimeout: 50 });
    const pending = locks.tryAcquire(uniqueKey('stall'), { ttl: 10_000 });
    // The stall under test (a GC pause, a busy CPU): the masters answer while it lasts, and their
    // answers must not lose to the 50 ms timeouts that expire during it.
    const end = nowMs() + 80;
    while (nowMs() < end);
    const lock = await pending;
    expect(lock).not.toBeNull();
    await lock!.release();
  });

  it('waits out both rounds of a refused attempt when 2 x nodeTimeout exceeds 2 s: busy, not unavailable', async () => {
    const nodeTimeout = 1_100;
    const locks = await redlockClient({ nodeTimeout });
    const other = await redlockClient({ nodeTimeout });
    const key = uniqueKey('slow-rounds');
    const held = await other.acquire(key, { ttl: 30_000 });
    await pause([masters[4]]);
    // Attempt, then undo: each round waits for the frozen master's 1100 ms.
    const started = nowMs();
    await expect(locks.tryAcquire(key, { ttl: 30_000 })).resolves.toBeNull();
    expect(nowMs() - started).toBeGreaterThanOrEqual(2 * nodeTimeout - 10);
    await resume([masters[4]]);
    await held.release();
  });

  it('never grants two racing processes at once (each with its own 5 connections), with 2 masters frozen mid-run', async () => {
    const witnessAdmin = connect(witness);
    const prefix = `${uniqueKey('race')}:`;
    const config: RedlockLoopConfig = {
      urls: masters.map((node) => node.url),
      observerUrl: witness.url,
      key: uniqueKey('race'),
      grants: 1_000,
      ttl: 5_000,
      nodeTimeout: 50,
      prefix,
    };
    const workers = [0, 1].map(() => forkWorker(LOOP_WORKER, [JSON.stringify(config)]));
    await Promise.all(
      workers.map((w) => nextMessage(w, (m: { type: string }) => m.type === 'ready', 20_000)),
    );
    const grantsSoFar = () => witnessAdmin.llen(`${prefix}order`);
    for (const worker of workers) worker.send({ type: 'go' });

    // Split-brain-ish: a minority frozen mid-run (their connections stay open, commands pile
    // up, then run in a burst on resume); grants must go on, and never overlap.
    await waitFor(async () => (await grantsSoFar()) >= 600, {
      timeout: 15_000,
      message: '600 grants before the freeze',
    });
    const frozen = [masters[0], masters[3]];
    await pause(frozen);
    const atFreeze = await grantsSoFar();
    await waitFor(async () => (await grantsSoFar()) >= atFreeze + 10, {
      timeout: 10_000,
      message: '10 grants with 2 masters frozen',
    });
    await resume(frozen);

    const reports = await Promise.all(
      workers.map((w) =>
        nextMessage<RedlockLoopReport>(w, (m) => m.type === 'done' || m.type === 'error', 20_000),
      ),
    );
    for (const report of reports) {
      if (report.type === 'error') throw new Error(`a worker failed: ${report.message}`);
    }
    for (const worker of workers) expect((await exited(worker)).code).toBe(0);
    const done = reports as Extract<RedlockLoopReport, { type: 'done' }>[];

    const total = done.reduce((sum, r) => sum + r.grants, 0);
    expect(total).toBe(2 * config.grants);
    expect(total).toBeGreaterThanOrEqual(2_000);
    for (const report of done) {
      expect(report.maxInside).toBe(1);
      expect(report.expiredInside).toBe(0);
    }
    const order = await witnessAdmin.lrange(`${prefix}order`, 0, -1);
    expect(order).toHaveLength(total);
    expect(await witnessAdmin.get(`${prefix}inside`)).toBe('0');
    // The processes really contended: the lock changed hands between them many times.
    const handOvers = order.filter((pid, i) => i > 0 && pid !== order[i - 1]).length;
    expect(handOvers).toBeGreaterThanOrEqual(20);
  });

  describe('renewal without a majority', () => {
    it('reports the loss through the signal at the next renewal when a majority no longer has the key', async () => {
      const logger = collectingLogger();
      const locks = await redlockClient({ nodeTimeout: 250 }, { logger });
      const key = uniqueKey('deleted');
      const ttl = 3_000;
      const lock = await locks.acquire(key, { ttl, autoRenew: true });
      const acquiredAt = nowMs();
      const aborted = abortTime(lock);

      const gone = [masters[0], masters[1], masters[4]];
      for (const node of gone) expect(await admin(node).del(`lock:{${key}}`)).toBe(1);
      const abortedAt = await aborted;

      // At the first renewal (ttl/3), long before the lease would have run out.
      expect(lock.signal.reason).toBeInstanceOf(LockLostError);
      expect((lock.signal.reason as Error).message).toContain('deleted or is now held by another');
      expect(abortedAt - acquiredAt).toBeLessThan(ttl / 3 + 700);
      expect(lock.isHeld()).toBe(false);
      expect(logger.messages.filter((m) => m.includes(`"${key}" was lost`))).toHaveLength(1);
    });

    it('reports the loss through the signal by the lease end when 3 of 5 masters are killed while held', async () => {
      const logger = collectingLogger();
      const locks = await redlockClient({ nodeTimeout: 100 }, { logger });
      const key = uniqueKey('killed-while-held');
      const ttl = 1_500;
      const lock = await locks.acquire(key, { ttl, autoRenew: true });
      const aborted = abortTime(lock);

      const killedAt = nowMs();
      await kill([masters[1], masters[2], masters[3]]);
      const abortedAt = await aborted;

      const reason = lock.signal.reason as Error;
      expect(reason).toBeInstanceOf(LockLostError);
      expect(reason.message).toContain('unreachable until its lease ran out');
      // Not at the first failed renewal (the masters might come back), and not never: when the
      // lease of the last renewal (at most ttl/3 before the kill) runs out.
      const lostAfter = abortedAt - killedAt;
      expect(lostAfter).toBeGreaterThan(ttl / 3);
      expect(lostAfter).toBeLessThan(ttl + 300);
      expect(lock.isHeld()).toBe(false);
      expect(logger.messages.filter((m) => m.includes(`"${key}" was lost`))).toHaveLength(1);
    });
  });

  it('passes a lock to a waiter of the same process without a script on any master; a release with no waiter frees every master', async () => {
    const locks = await redlockClient();
    const key = uniqueKey('passes');
    // Every script in each master's cache: each run below is then one EVALSHA, counted once.
    for (const node of masters) {
      for (const script of Object.values(LockScripts))
        await admin(node).script('LOAD', script.source);
    }
    const opts = { ttl: 10_000, autoRenew: true };
    const first = await locks.acquire(key, opts);
    const before = await Promise.all(masters.map((node) => scriptCalls(admin(node))));
    const waiting = locks.acquire(key, { ...opts, waitTimeout: 5_000 });
    // Its attempt, then the undo of that refused attempt, ran on every master; the round trips
    // that follow let this process handle their answers, after which the waiter waits for the
    // holder of its own process.
    const scriptsBefore = before.map((n) => n + 2);
    await waitFor(
      async () => {
        const now = await Promise.all(masters.map((node) => scriptCalls(admin(node))));
        return now.every((n, i) => n >= scriptsBefore[i]);
      },
      { message: 'the waiter to find the lock busy on every master' },
    );
    await Promise.all(masters.map((node) => admin(node).ping()));

    expect(await first.release()).toBe(true);
    const second = await waiting;
    expect(second.token).toBe(first.token);
    expect(second.fencingToken).toBe(first.fencingToken + 1n);
    // Passed in this process: not one script ran on a master, and each still has the lock.
    await expect(Promise.all(masters.map((node) => scriptCalls(admin(node))))).resolves.toEqual(
      scriptsBefore,
    );
    for (const node of masters) {
      await expect(admin(node).get(`lock:{${key}}`)).resolves.toBe(first.token);
    }
    expect(await second.release()).toBe(true);
    for (const node of masters) await expect(admin(node).exists(`lock:{${key}}`)).resolves.toBe(0);
  });

  it('fair: true warns once through the logger and grants as the default mode', async () => {
    const logger = collectingLogger();
    const locks = await redlockClient({}, { logger, fair: true });
    const key = uniqueKey('fair');

    const first = await locks.acquire(key, { ttl: 5_000 });
    // A fair waiter polls (no queue, no wake-ups under Redlock) and gets it once it is released.
    const scriptsBefore = await scriptCalls(admin(masters[0]));
    const waiting = locks.acquire(key, { ttl: 5_000, waitTimeout: 5_000, fair: true });
    await waitFor(async () => (await scriptCalls(admin(masters[0]))) > scriptsBefore, {
      message: 'the fair waiter to find the lock busy',
    });
    expect(await first.release()).toBe(true);
    const second = await waiting;
    expect(second.isHeld()).toBe(true);
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    expect(await second.release()).toBe(true);
    const single = await locks.tryAcquire(key, { fair: true });
    expect(single).not.toBeNull();
    await single!.release();

    expect(logger.messages).toEqual([FAIR_UNAVAILABLE_WARNING]);
    for (const node of masters) expect(await admin(node).exists(`lock:{${key}}:queue`)).toBe(0);
  });
});

/** Scripts run so far on a master (EVALSHA and EVAL). */
async function scriptCalls(redis: Redis): Promise<number> {
  return (await commandCalls(redis, 'evalsha')) + (await commandCalls(redis, 'eval'));
}

/** Resolves with the monotonic time at which the handle's signal aborts. */
function abortTime(lock: RedisLockHandle): Promise<number> {
  return new Promise((resolve) => {
    lock.signal.addEventListener('abort', () => resolve(nowMs()), { once: true });
  });
}
