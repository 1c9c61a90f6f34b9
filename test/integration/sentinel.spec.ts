import type { Redis, RedisOptions } from 'ioredis';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { LockLostError, LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { FENCE_STRIDE } from '../../lib/redis-lock.constants.js';
import { stopAllRedis, type RedisServer } from '../support/redis-server.js';
import {
  startSentinelGroup,
  stopAllSentinelGroups,
  type SentinelGroup,
} from '../support/redis-sentinel.js';
import { stopAllSentinelProcesses } from '../support/sentinel-process.js';
import { sleep, waitFor } from '../support/wait-for.js';
import {
  collectingLogger,
  LockClients,
  nowMs,
  rejectionOf,
  renewalSeen,
  uniqueKey,
} from './helpers.js';

/**
 * ioredis options of every client that finds the master through the Sentinels (the harness adds
 * `disconnectTimeout: 100`): a command fails after one reconnection attempt instead of twenty, and
 * a lost connection is retried every 100 ms, so the client reaches the promoted replica soon after
 * the Sentinels name it rather than after ioredis' growing back-off (up to 2 s).
 */
const VIA_SENTINEL: RedisOptions = { maxRetriesPerRequest: 1, retryStrategy: () => 100 };

/**
 * Lease of the locks held across a failover. With the harness's `down-after-milliseconds` of
 * 1000, a failover takes about 2.3 s from the kill to a promoted replica (2.5 s with both cores
 * loaded); the holder's local lease (at least 2/3 of the ttl left at the kill, since the watchdog
 * renews every ttl / 3) must outlast it for its watchdog to reach the new master: 5 s here.
 */
const FAILOVER_TTL = 7500;

/**
 * A client of one server (closed when the server stops). A short `disconnectTimeout`, as the
 * harness gives Sentinel clients: closing a client that is reconnecting to a killed master would
 * otherwise keep ioredis' 2 s timer, which holds Jest open after the run.
 */
function admin(server: RedisServer): Redis {
  return server.client({ maxRetriesPerRequest: 1, disconnectTimeout: 100 });
}

/** The lock's value and PTTL on one server. */
async function lockOn(
  redis: Redis,
  redisKey: string,
): Promise<{ value: string | null; pttl: number }> {
  const [[, value], [, pttl]] = (await redis.multi().get(redisKey).pttl(redisKey).exec()) as [
    [null, string | null],
    [null, number],
  ];
  return { value, pttl };
}

/** Kills the group's master (SIGKILL) and resolves with the replica the Sentinels promote. */
async function killMasterAndFailOver(group: SentinelGroup): Promise<RedisServer> {
  group.master.kill('SIGKILL');
  await group.master.exited;
  return group.waitForFailover(group.master.port, 15_000);
}

/** Waits until the signal aborts and returns its reason. */
async function abortReason(handle: RedisLockHandle, timeout: number): Promise<unknown> {
  await waitFor(() => handle.signal.aborted, {
    timeout,
    message: `the signal of ${handle.key} to abort`,
  });
  return handle.signal.reason;
}

describe('RedisLockClient through Redis Sentinel: failovers and waitForReplicas', () => {
  /** One group per test, started together: a group takes ~2.5 s to start, mostly discovery. */
  let survives: SentinelGroup;
  let loses: SentinelGroup;
  let refuses: SentinelGroup;
  let follows: SentinelGroup;
  const clients = new LockClients();

  beforeAll(async () => {
    [survives, loses, refuses, follows] = await Promise.all(
      [1, 2, 3, 4].map(() => startSentinelGroup({ replicas: 1, sentinels: 3 })),
    );
  });
  afterEach(() => clients.closeAll());
  afterAll(async () => {
    await stopAllSentinelGroups();
    await stopAllSentinelProcesses();
    await stopAllRedis();
  });

  it('a lock taken through Sentinel survives a failover when the replica had it', async () => {
    const group = survives;
    const [replica] = group.replicas;
    const logger = collectingLogger();
    const holder = clients.create(group.client(VIA_SENTINEL), {
      waitForReplicas: { replicas: 1, timeout: 500 },
      logger,
    });
    const key = uniqueKey('survives');
    const handle = await holder.acquire(key, { ttl: FAILOVER_TTL, autoRenew: true });
    const { redisKey } = handle;
    const fenceKey = `${redisKey}:fence`;

    // WAIT answered 1 before acquire returned, so the replica already has the grant and counter.
    const replicaAdmin = admin(replica);
    expect((await lockOn(replicaAdmin, redisKey)).value).toBe(handle.token);
    expect(await replicaAdmin.get(fenceKey)).toBe(handle.fencingToken.toString());

    const killedAt = nowMs();
    const promoted = await killMasterAndFailOver(group);
    expect(promoted).toBe(replica);

    // The contender, a second client through Sentinel, lands on the promoted replica: busy.
    const contender = clients.create(group.client(VIA_SENTINEL));
    await expect(contender.tryAcquire(key)).resolves.toBeNull();

    // The holder's watchdog renews on the new master: its PTTL goes up there.
    await renewalSeen(replicaAdmin, redisKey, FAILOVER_TTL);
    // Keep checking until more than one ttl has passed since the kill: the lease written on the
    // old master (at most a ttl before the kill) has run out by then, so the key can only still be
    // there because the new master renewed it. The passing time is what is under test; the 50 ms
    // sleep only paces the samples, each of which is checked.
    let samples = 0;
    while (nowMs() - killedAt < FAILOVER_TTL + 250) {
      const { value, pttl } = await lockOn(replicaAdmin, redisKey);
      expect(value).toBe(handle.token);
      expect(pttl).toBeGreaterThan(0);
      expect(handle.isHeld()).toBe(true);
      expect(handle.signal.aborted).toBe(false);
      samples++;
      await sleep(50);
    }
    expect(samples).toBeGreaterThan(5);
    await expect(contender.tryAcquire(key)).resolves.toBeNull();
    expect(logger.messages).toEqual([]);

    // The holder lets go on the new master; the contender gets the lock with the next token of
    // the counter the replica received (replicated, not re-seeded from the clock).
    await expect(handle.release()).resolves.toBe(true);
    const next = await contender.tryAcquire(key);
    expect(next).not.toBeNull();
    expect(next!.fencingToken).toBe(handle.fencingToken + BigInt(FENCE_STRIDE));
    expect((await lockOn(replicaAdmin, redisKey)).value).toBe(next!.token);
  });

  it('without waitForReplicas, a failover right after a grant can lose the lock, and the holder learns it', async () => {
    const group = loses;
    const [replica] = group.replicas;
    const masterAdmin = admin(group.master);
    const logger = collectingLogger();
    const holder = clients.create(group.client(VIA_SENTINEL), { logger });
    const key = uniqueKey('loses');

    // Cut replication as a network partition would. The master drops the replica's link while the
    // replica is frozen (SIGSTOP), so it cannot reconnect and fetch the grant from the backlog (a
    // running replica would within a second); the master dies before the replica is resumed, and
    // a resumed replica can be promoted.
    let handle: RedisLockHandle;
    await replica.pause();
    try {
      await expect(masterAdmin.call('CLIENT', 'KILL', 'TYPE', 'replica')).resolves.toBe(1);
      expect(await masterAdmin.info('replication')).toMatch(/connected_slaves:0/);
      handle = await holder.acquire(key, { ttl: FAILOVER_TTL, autoRenew: true });
      expect((await lockOn(masterAdmin, handle.redisKey)).value).toBe(handle.token);
      group.master.kill('SIGKILL');
      await group.master.exited;
    } finally {
      await replica.resume();
    }
    const { redisKey } = handle;
    const promoted = await group.waitForFailover(group.master.port, 15_000);
    expect(promoted).toBe(replica);

    // The promoted replica never saw the grant, nor the fencing counter it created.
    const replicaAdmin = admin(replica);
    expect(await replicaAdmin.exists(redisKey, `${redisKey}:fence`)).toBe(0);

    // A contender takes the lock the holder still believes it has.
    const contender = clients.create(group.client(VIA_SENTINEL));
    const taken = await contender.tryAcquire(key, { ttl: 30_000 });
    expect(taken).not.toBeNull();
    expect((await lockOn(replicaAdmin, redisKey)).value).toBe(taken!.token);
    // Its fencing token still goes up: the counter is re-seeded from the new master's clock
    // (microseconds), which is more than down-after-milliseconds (1 s) past the holder's grant.
    expect(taken!.fencingToken).toBeGreaterThan(handle.fencingToken + 1_000_000n);

    // The holder's watchdog, reconnected to the new master, finds the key held by another owner.
    const reason = await abortReason(handle, FAILOVER_TTL);
    expect(reason).toBeInstanceOf(LockLostError);
    expect((reason as Error).message).toBe(
      `Lock "${key}" was lost: the key was deleted or is now held by another owner.`,
    );
    expect(handle.isHeld()).toBe(false);
    expect(logger.messages).toEqual([
      `Lock "${key}" was lost while held: the key was deleted or is now held by another owner. ` +
        'Work still running under it is no longer exclusive.',
    ]);
    // The contender's lock is untouched by the holder's loss.
    expect((await lockOn(replicaAdmin, redisKey)).value).toBe(taken!.token);
    await expect(handle.release()).resolves.toBe(false);
  });

  it('waitForReplicas refuses a grant when the replica is frozen', async () => {
    const group = refuses;
    const [replica] = group.replicas;
    const masterAdmin = admin(group.master);
    const replicaAdmin = admin(replica);
    const locks = clients.create(group.client(VIA_SENTINEL), {
      waitForReplicas: { replicas: 1, timeout: 200 },
    });
    const key = uniqueKey('refused');
    const redisKey = `lock:{${key}}`;
    const fenceKey = `${redisKey}:fence`;

    await replica.pause();
    let refused: { error: Error; ms: number };
    try {
      refused = await rejectionOf(locks.acquire(key, { ttl: 30_000 }));
    } finally {
      await replica.resume();
    }
    const { error, ms } = refused;
    expect(error).toBeInstanceOf(LockUnavailableError);
    expect(error.message).toBe(
      `Redis is unavailable, so lock "${key}" could not be handled: only 0 of the 1 replica(s) ` +
        'required by waitForReplicas acknowledged the lock within 200 ms; it was released',
    );
    // WAIT blocks for its whole timeout; the release after it is one more round trip.
    expect(ms).toBeGreaterThanOrEqual(190);
    expect(ms).toBeLessThan(200 + 1500);
    // Lock tokens are 32 hex characters: none leaks into the message.
    expect(error.message).not.toMatch(/[0-9a-f]{32}/);

    // The master granted it (the grant issued a fencing token), then the client released it: the
    // lock key, with its 30 s lease, is already gone.
    expect(await masterAdmin.exists(redisKey)).toBe(0);
    const fence = await masterAdmin.get(fenceKey);
    expect(fence).toMatch(/^\d+$/);
    const refusedFence = BigInt(fence!);

    // Resumed, the replica acknowledges again and the same acquire succeeds.
    await waitFor(
      async () => /master_link_status:up/.test(await replicaAdmin.info('replication')),
      { message: 'the resumed replica to be linked to its master' },
    );
    const handle = await locks.acquire(key, { ttl: 30_000 });
    expect(handle.fencingToken).toBe(refusedFence + BigInt(FENCE_STRIDE));
    expect((await lockOn(masterAdmin, redisKey)).value).toBe(handle.token);
    expect((await lockOn(replicaAdmin, redisKey)).value).toBe(handle.token);
    await handle.release();
  });

  it('follows the failover for new locks', async () => {
    const group = follows;
    const locks = clients.create(group.client(VIA_SENTINEL));
    const before = await locks.acquire(uniqueKey('before'));
    expect(await admin(group.master).get(before.redisKey)).toBe(before.token);
    await before.release();

    // Try a new key from the moment the master dies: attempts fail while there is no master,
    // then succeed on the promoted replica without anything done to the client.
    group.master.kill('SIGKILL');
    await group.master.exited;
    const killedAt = nowMs();
    const key = uniqueKey('after');
    const failures: unknown[] = [];
    let handle: RedisLockHandle | null = null;
    await waitFor(
      async () => {
        try {
          handle = await locks.tryAcquire(key);
        } catch (error) {
          failures.push(error);
        }
        return handle !== null;
      },
      { timeout: 15_000, interval: 100, message: `a lock on ${key} after the failover` },
    );
    const tookMs = nowMs() - killedAt;
    const promoted = await group.waitForFailover(group.master.port, 5000);
    expect(promoted).toBe(group.replicas[0]);
    expect(await admin(promoted).get(handle!.redisKey)).toBe(handle!.token);
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) expect(failure).toBeInstanceOf(LockUnavailableError);
    // down-after-milliseconds is 1 s: no master can have been promoted sooner.
    expect(tookMs).toBeGreaterThan(1000);
  });
});
