/**
 * A lease is only ever counted from a command this client sent, never from a message or a guess:
 * stalls, slow replies and refusals never leave a caller running under a lock another owner holds
 * (issue 14, cases 1, 2, 4, 8 and 11).
 */
import type { Redis } from 'ioredis';
import { trustedLease } from '../../lib/core/lease/monotonic-clock.js';
import { LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { killAllWorkers } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { fairQueue, LockAgent, LockClients, nowMs, rejectionOf, uniqueKey } from './helpers.js';

/** Longer than any test here. */
const LONG_TTL = 30_000;

describe('lease safety: a caller never runs on a lease it cannot prove', () => {
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

  const lockKey = (key: string) => `lock:{${key}}`;

  /** Starts `agent` waiting for `key` and resolves once it stands in the key's queue. */
  async function queueAgent(agent: LockAgent, key: string, fair: boolean) {
    agent.send({
      type: 'acquire',
      id: 'w',
      key,
      options: { ttl: 2_000, waitTimeout: 15_000, fair },
    });
    await waitFor(async () => (await fairQueue(admin, key)).length === 1, {
      interval: 5,
      message: 'the agent to queue',
    });
  }

  /** Blocks the agent's event loop for `ms` and resolves once it is blocked. */
  async function blockAgent(agent: LockAgent, ms: number): Promise<void> {
    const marker = uniqueKey('blocked');
    agent.send({ type: 'block', id: 'block', ms, marker });
    await waitFor(async () => (await admin.exists(marker)) === 1, {
      interval: 2,
      message: 'the agent to block',
    });
  }

  describe.each([
    ['fair mode', true],
    ['default mode', false],
  ])('case 1: a hand-over read late is only a hint (%s)', (_mode, fair) => {
    it('a waiter stalled past its hand-over, whose key another client took, waits for that owner', async () => {
      const key = uniqueKey('stale-hand-over');
      const releaser = clients.create(redis.client(), { fairQueueTimeout: 300 });
      const taker = clients.create(redis.client());
      const holder = await releaser.acquire(key, { ttl: LONG_TTL });
      const agent = await LockAgent.start(redis.url, { fair, fairQueueTimeout: 300 });
      await queueAgent(agent, key, fair);

      await blockAgent(agent, 1_200);
      await holder.release(); // hands the lock to the blocked agent
      await waitFor(async () => (await admin.exists(lockKey(key))) === 0, {
        interval: 5,
        message: 'the unconfirmed hand-over to lapse',
      });
      const other = await taker.tryAcquire(key, { ttl: LONG_TTL });
      expect(other).not.toBeNull();
      await agent.reply('block', ['blocked']);

      // While the other owner holds the key, the agent must not be granted it.
      const grant = agent.reply('w', ['granted', 'failed'], 20_000);
      const early = await Promise.race([grant, new Promise((r) => setTimeout(r, 1_000, null))]);
      expect(early).toBeNull();
      await expect(admin.get(lockKey(key))).resolves.toBe(other!.token);

      const releasedAt = nowMs();
      await other!.release();
      const reply = await grant;
      expect(reply).toMatchObject({ type: 'granted', held: true, owns: true });
      expect((reply as { at: number }).at).toBeGreaterThan(releasedAt);
    });
  });

  describe('case 11: the hand-over lease is the waiter’s own spot, whoever releases', () => {
    it.each([
      [60_000, 300],
      [300, 5_000],
    ])(
      'releaser fairQueueTimeout %i, waiter %i: the key is handed over for at most the waiter’s',
      async (releaserTimeout, waiterTimeout) => {
        const key = uniqueKey('hand-over-lease');
        const releaser = clients.create(redis.client(), {
          fair: true,
          fairQueueTimeout: releaserTimeout,
        });
        const holder = await releaser.acquire(key, { ttl: LONG_TTL });
        const agent = await LockAgent.start(redis.url, {
          fair: true,
          fairQueueTimeout: waiterTimeout,
        });
        await queueAgent(agent, key, true);
        // Frozen, it cannot take the hand-over up: the key keeps the lease the release gave.
        await blockAgent(agent, 2_000);
        await holder.release();
        const pttl = await admin.pttl(lockKey(key));
        expect(pttl).toBeGreaterThan(0);
        expect(pttl).toBeLessThanOrEqual(waiterTimeout);
        // Its spot was refreshed at least every third of its timeout before it blocked.
        expect(pttl).toBeGreaterThan(waiterTimeout * (2 / 3) - 250);
        await agent.reply('block', ['blocked']);
        await expect(agent.reply('w', ['granted', 'failed'])).resolves.toMatchObject({
          type: 'granted',
          held: true,
          owns: true,
        });
      },
    );
  });

  it('case 2: a lock passed in the process that Redis refuses to confirm is never run on', async () => {
    expect.hasAssertions();
    const key = uniqueKey('refused-pass');
    const locks = clients.create(redis.client());
    const other = clients.create(redis.client());
    const ttl = 1_000;
    const first = await locks.acquire(key, { ttl });
    const ran: { owns: boolean; held: boolean; at: number }[] = [];
    const waiter = locks.run(
      key,
      async (lock) => {
        ran.push({
          held: lock.isHeld(),
          owns: (await admin.get(lockKey(key))) === lock.token,
          at: nowMs(),
        });
      },
      { ttl, waitTimeout: 10_000 },
    );
    // Past half its lease, a lock passed on is confirmed before its taker runs.
    await waitFor(() => first.leaseLeft() < trustedLease(ttl) / 2 - 50, {
      interval: 5,
      message: 'the lease to be half gone',
    });
    // A failover lost the key, and another client took it.
    await admin.del(lockKey(key));
    const taken = await other.tryAcquire(key, { ttl: LONG_TTL });
    expect(taken).not.toBeNull();

    await first.release(); // passes the lock to the waiter in this process
    const early = await Promise.race([waiter, new Promise((r) => setTimeout(r, 500, 'waiting'))]);
    expect(early).toBe('waiting');
    expect(ran).toEqual([]);

    const releasedAt = nowMs();
    await taken!.release();
    await waiter;
    expect(ran).toEqual([{ held: true, owns: true, at: expect.any(Number) }]);
    expect(ran[0].at).toBeGreaterThan(releasedAt);
  });

  describe('case 4: renewal and the signal follow the lease actually left', () => {
    it('a grant whose reply took 70% of the ttl is renewed before its lease runs out', async () => {
      const key = uniqueKey('slow-grant');
      const ttl = 1_000;
      const locks = clients.create(redis.client());
      // Redis busy with a slow script: the grant's reply comes about 700 ms after it was sent.
      const busy = admin.eval(
        `local t = redis.call('time') local s = t[1] * 1000000 + t[2]
         repeat t = redis.call('time') until t[1] * 1000000 + t[2] - s >= 700000 return 1`,
        0,
      );
      const seen: boolean[] = [];
      await locks.run(
        key,
        async (lock) => {
          // Held for well past the first renewal a ttl/3 timer from the reply would make.
          const until = nowMs() + 800;
          while (nowMs() < until) {
            seen.push(lock.isHeld() && !lock.signal.aborted);
            await new Promise((r) => setTimeout(r, 20));
          }
        },
        { ttl },
      );
      await busy;
      expect(seen.length).toBeGreaterThan(10);
      expect(seen.every(Boolean)).toBe(true);
    });

    it('signal.aborted is true whenever isHeld() is false, even before a blocked loop runs timers', async () => {
      const locks = clients.create(redis.client());
      // Connected and the script loaded first, and a ttl with room for a slow grant on a busy
      // machine: the first check needs the reply well before the lease's end.
      await locks.tryAcquire(uniqueKey('warm-up'));
      const ttl = 1_000;
      const before = nowMs();
      const lock = await locks.acquire(uniqueKey('blocked-loop'), { ttl });
      const granted = nowMs();
      const { signal } = lock;
      // Sampled synchronously, so no timer can run, for a while past the lease's end. A sample
      // is judged by the clock read before and after it, so a moment this process was not
      // scheduled (a busy VM) widens a sample's window instead of failing it.
      const samples: { from: number; to: number; held: boolean; aborted: boolean }[] = [];
      const end = granted + trustedLease(ttl) + 20;
      while (samples.length === 0 || samples[samples.length - 1].to < end) {
        const from = nowMs();
        const aborted = signal.aborted;
        const held = lock.isHeld();
        samples.push({ from, to: nowMs(), held, aborted });
      }
      // Surely within the lease (it counts from the send, after `before`): held, not aborted.
      const within = samples.filter((s) => s.to < before + trustedLease(ttl));
      // Surely past it (counted from the grant's reply, after the send): lost, and aborted.
      const past = samples.filter((s) => s.from >= granted + trustedLease(ttl));
      expect(within.length).toBeGreaterThan(0);
      expect(past.length).toBeGreaterThan(0);
      expect(within.every((s) => s.held && !s.aborted)).toBe(true);
      expect(past.every((s) => !s.held && s.aborted)).toBe(true);
      // Never aborted while held, in either order of the two reads.
      expect(samples.every((s) => !(s.aborted && s.held))).toBe(true);
      expect(() => signal.throwIfAborted()).toThrow(/lease ran out/);
      // The margin: the local lease ended before Redis' (the key still exists or just went).
      expect(trustedLease(ttl)).toBeLessThan(ttl);
    });
  });

  describe('rule 1: a lease counts from when its command was sent, never from its reply', () => {
    const ttl = 1_000;
    /** How long Redis keeps the reply back: far above the scheduler noise of the checks below. */
    const stall = 400;
    /** Slack for the few synchronous steps between `before` and the library's own send time. */
    const slack = 50;

    /**
     * Busies Redis for `ms` with a script on `connection`: a command sent next on the same
     * connection is run, and answered, only after it (one connection keeps its order).
     */
    const stallConnection = (connection: Redis, ms: number) =>
      connection.eval(
        `local t = redis.call('time') local s = t[1] * 1000000 + t[2]
         repeat t = redis.call('time') until t[1] * 1000000 + t[2] - s >= ${ms * 1000} return 1`,
        0,
      );

    it(`a grant answered ${stall} ms late is held until a trusted lease after the call, not after the reply`, async () => {
      const connection = redis.client();
      const locks = clients.create(connection);
      await locks.tryAcquire(uniqueKey('warm-up')); // connected, scripts loaded
      const stalled = stallConnection(connection, stall);
      const before = nowMs();
      const lock = await locks.acquire(uniqueKey('slow-grant-lease'), { ttl });
      const repliedAt = nowMs();
      await stalled;
      expect(repliedAt - before).toBeGreaterThanOrEqual(stall - slack);
      // Synchronously from here: no timer runs, only the lease arithmetic answers.
      while (nowMs() < before + trustedLease(ttl) - slack);
      expect(lock.isHeld()).toBe(true);
      while (nowMs() < before + trustedLease(ttl) + slack);
      // A lease counted from the reply would last until about repliedAt + trustedLease(ttl).
      expect(lock.isHeld()).toBe(false);
      expect(lock.signal.aborted).toBe(true);
    });

    it(`an extend answered ${stall} ms late is held until a trusted lease after the call, not after the reply`, async () => {
      const connection = redis.client();
      const locks = clients.create(connection);
      const lock = await locks.acquire(uniqueKey('slow-extend-lease'), { ttl });
      await lock.extend(); // the script is loaded
      const stalled = stallConnection(connection, stall);
      const before = nowMs();
      await lock.extend();
      const repliedAt = nowMs();
      await stalled;
      expect(repliedAt - before).toBeGreaterThanOrEqual(stall - slack);
      while (nowMs() < before + trustedLease(ttl) - slack);
      expect(lock.isHeld()).toBe(true);
      while (nowMs() < before + trustedLease(ttl) + slack);
      expect(lock.isHeld()).toBe(false);
      expect(lock.signal.aborted).toBe(true);
    });
  });

  describe('case 8: Redis not answering during a wait is unavailable, not busy', () => {
    it.each([200, 1_000])(
      'Redis frozen (SIGSTOP), waitTimeout %i: LockUnavailableError for a key nobody holds',
      async (waitTimeout) => {
        const locks = clients.create(redis.client());
        await locks.tryAcquire(uniqueKey('warm-up')); // connected, scripts loaded
        await redis.pause();
        try {
          const { error, ms } = await rejectionOf(
            locks.acquire(uniqueKey('frozen'), { ttl: 5_000, waitTimeout }),
          );
          expect(error).toBeInstanceOf(LockUnavailableError);
          expect(ms).toBeLessThan(waitTimeout + 2_500);
        } finally {
          await redis.resume();
        }
      },
    );
  });
});
