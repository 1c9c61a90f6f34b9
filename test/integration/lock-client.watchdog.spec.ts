import { trustedLease } from '../../lib/core/lease/monotonic-clock.js';
import type { Redis } from 'ioredis';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { LockLostError, LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { sleep, waitFor } from '../support/wait-for.js';
import {
  collectingLogger,
  CommandLog,
  LockClients,
  nowMs,
  rejectionOf,
  renewalSeen,
  uniqueKey,
} from './helpers.js';

/** Records when `handle.signal` aborts (monotonic ms), or undefined while it has not. */
function abortTime(handle: RedisLockHandle): () => number | undefined {
  let at: number | undefined;
  handle.signal.addEventListener('abort', () => (at = nowMs()), { once: true });
  return () => at;
}

describe('RedisLockClient: the watchdog (autoRenew) and loss detection', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
    // Load both scripts, so the command log below never sees a NOSCRIPT attempt.
    const warm = await clients.create(redis.client()).acquire(uniqueKey('warm-up'));
    await warm.extend();
    await warm.release();
  });
  afterEach(async () => {
    await admin.call('CLIENT', 'UNPAUSE');
    await clients.closeAll();
  });
  afterAll(() => stopAllRedis());

  it('keeps the lock through 5x its ttl: PTTL stays > 0 and the token never changes', async () => {
    const ttl = 600;
    const locks = clients.create(redis.client());
    const handle = await locks.acquire(uniqueKey('held'), { ttl, autoRenew: true });
    const started = nowMs();
    let samples = 0;
    // Sample the lock every 50 ms for 3 s; pacing only, every sample is checked.
    while (nowMs() - started < 5 * ttl) {
      const [[, value], [, pttl]] = (await admin
        .multi()
        .get(handle.redisKey)
        .pttl(handle.redisKey)
        .exec()) as [[null, string | null], [null, number]];
      expect(value).toBe(handle.token);
      expect(pttl).toBeGreaterThan(0);
      expect(handle.isHeld()).toBe(true);
      expect(handle.signal.aborted).toBe(false);
      samples++;
      await sleep(50);
    }
    expect(samples).toBeGreaterThan(10);
  });

  it('renews a third of the ttl into the lease: ttl 3 s, the first EXTEND runs 0.85 to 1.25 s after the grant (ttl/2 would be 1.5 s)', async () => {
    const ttl = 3_000;
    const log = await CommandLog.start(admin);
    try {
      const handle = await clients
        .create(redis.client())
        .acquire(uniqueKey('rhythm'), { ttl, autoRenew: true });
      await waitFor(() => log.scriptsOf(handle.token).includes('extend'), {
        timeout: ttl,
        message: 'the first renewal',
      });
      // Both times on Redis' clock, from MONITOR: only the client's timer can be late.
      const runs = log.scriptRunsOf(handle.token);
      const renewedAfter = runs.find((r) => r.name === 'extend')!.at - runs[0].at;
      expect(runs[0].name).toBe('acquire');
      // Due a third of the ttl into the trusted lease, which counts from just before the grant.
      expect(renewedAfter).toBeGreaterThanOrEqual(850);
      expect(renewedAfter).toBeLessThan(1_250);
    } finally {
      log.stop();
    }
  });

  it('stops renewing the moment the lock is released', async () => {
    const log = await CommandLog.start(admin);
    try {
      const ttl = 300;
      const handle = await clients
        .create(redis.client())
        .acquire(uniqueKey('stop'), { ttl, autoRenew: true });
      // Another watched lock, renewing at the same rhythm, is the clock for "later".
      const reference = await clients
        .create(redis.client())
        .acquire(uniqueKey('clock'), { ttl, autoRenew: true });

      await waitFor(() => log.scriptsOf(handle.token).filter((s) => s === 'extend').length >= 2, {
        message: 'the watchdog to renew twice',
      });
      await expect(handle.release()).resolves.toBe(true);
      const referenceRenewals = () => log.scriptsOf(reference.token).length;
      const atRelease = referenceRenewals();
      await waitFor(() => referenceRenewals() >= atRelease + 4, {
        message: 'four more renewal periods of the reference lock',
      });

      const scripts = log.scriptsOf(handle.token);
      expect(scripts.filter((s) => s === 'release')).toHaveLength(1);
      // Nothing ran with the released token after its release.
      expect(scripts[scripts.length - 1]).toBe('release');
      await expect(admin.exists(handle.redisKey)).resolves.toBe(0);
    } finally {
      log.stop();
    }
  });

  it('detects a deleted key at the next renewal: the signal aborts with LockLostError within ttl/3 + 500 ms, long before the lease would end', async () => {
    const ttl = 1500;
    const logger = collectingLogger();
    const handle = await clients
      .create(redis.client(), { logger })
      .acquire(uniqueKey('deleted'), { ttl, autoRenew: true });
    const abortedAt = abortTime(handle);

    const deletedAt = nowMs();
    await admin.del(handle.redisKey);
    await waitFor(() => abortedAt() !== undefined, {
      timeout: 3000,
      message: 'the signal to abort',
    });

    // Renewal every 500 ms finds the key gone; the lease alone would run 1500 ms.
    expect(abortedAt()! - deletedAt).toBeLessThan(ttl / 3 + 500);
    expect(handle.signal.reason).toBeInstanceOf(LockLostError);
    const reason = handle.signal.reason as LockLostError;
    expect(reason.message).toContain('deleted or is now held by another owner');
    expect(handle.isHeld()).toBe(false);
    await expect(admin.exists(handle.redisKey)).resolves.toBe(0);

    expect(logger.messages).toHaveLength(1);
    expect(logger.messages[0]).toContain(handle.key);
    expect(logger.messages[0]).toContain('was lost while held');
    for (const text of [...logger.messages, reason.message])
      expect(text).not.toContain(handle.token);
  });

  it('without the watchdog, aborts the signal when the lease runs out, never after Redis expired the key', async () => {
    const ttl = 400;
    const before = nowMs();
    const handle = await clients.create(redis.client()).acquire(uniqueKey('lease'), { ttl });
    const abortedAt = abortTime(handle);

    await waitFor(async () => (await admin.exists(handle.redisKey)) === 0, {
      interval: 5,
      message: 'the key to expire',
    });
    // The local lease counts from before the SET was sent, so it ends no later than Redis's.
    expect(handle.isHeld()).toBe(false);
    await waitFor(() => abortedAt() !== undefined, {
      timeout: 1000,
      message: 'the signal to abort',
    });
    // Not before the trusted lease (a margin short of the ttl) counted from before the SET.
    expect(abortedAt()! - before).toBeGreaterThanOrEqual(trustedLease(ttl));
    expect(handle.signal.reason).toBeInstanceOf(LockLostError);
    expect((handle.signal.reason as Error).message).toContain('lease ran out');
  });

  it('declares the lock lost when Redis cannot be written past the lease (CLIENT PAUSE WRITE)', async () => {
    const ttl = 600;
    const logger = collectingLogger();
    const locks = clients.create(redis.client(), { logger });
    const acquiredAt = nowMs();
    const handle = await locks.acquire(uniqueKey('paused'), { ttl, autoRenew: true });
    const abortedAt = abortTime(handle);
    await renewalSeen(admin, handle.redisKey);

    const pausedAt = nowMs();
    await admin.call('CLIENT', 'PAUSE', '4000', 'WRITE');
    await waitFor(() => abortedAt() !== undefined, { timeout: 3000, message: 'the loss' });

    // The last renewal that got through was sent before the pause; its lease ran out after.
    expect(abortedAt()! - pausedAt).toBeLessThan(ttl + 400);
    expect(abortedAt()! - acquiredAt).toBeGreaterThanOrEqual(ttl);
    // Redis is still paused: the loss was declared by the local lease clock, not by Redis.
    expect(nowMs() - pausedAt).toBeLessThan(4000);
    const reason = handle.signal.reason as Error;
    expect(reason).toBeInstanceOf(LockLostError);
    expect(reason.message).toContain('Redis stayed unreachable until its lease ran out');
    expect(handle.isHeld()).toBe(false);
    expect(logger.messages).toEqual([expect.stringContaining('Redis stayed unreachable')]);
    for (const text of [...logger.messages, reason.message])
      expect(text).not.toContain(handle.token);

    await admin.call('CLIENT', 'UNPAUSE');
    // The renewal queued during the pause does not bring the expired lock back.
    await waitFor(async () => (await admin.exists(handle.redisKey)) === 0, {
      message: 'the expired key to be gone',
    });
    await expect(handle.release()).resolves.toBe(false);
  });

  it('tolerates transient Redis errors: renewals that time out are retried and the lock survives', async () => {
    const ttl = 2000;
    const logger = collectingLogger();
    // Commands fail after 50 ms without an answer, so renewals during the pause reject.
    const locks = clients.create(redis.client({ commandTimeout: 50 }), { logger });
    const handle = await locks.acquire(uniqueKey('transient'), { ttl, autoRenew: true });
    await renewalSeen(admin, handle.redisKey);

    // Longer than a renewal period (ttl/3 ≈ 667 ms), so at least one renewal fails; shorter than
    // what is left of the lease.
    const pausedAt = nowMs();
    await admin.call('CLIENT', 'PAUSE', '900', 'WRITE');
    // Past the point where the lease would have run out had no renewal succeeded after the pause.
    while (nowMs() - pausedAt < ttl + 300) {
      expect(handle.signal.aborted).toBe(false);
      expect(handle.isHeld()).toBe(true);
      await expect(admin.get(handle.redisKey)).resolves.toBe(handle.token);
      await sleep(50);
    }
    expect(await admin.pttl(handle.redisKey)).toBeGreaterThan(ttl / 3);
    expect(logger.messages).toEqual([]);
  });

  it('close() releases every held lock and stops its watchdogs', async () => {
    const log = await CommandLog.start(admin);
    try {
      const ttl = 300;
      const locks = clients.create(redis.client());
      const watched = await locks.acquire(uniqueKey('close-a'), { ttl, autoRenew: true });
      const plain = await locks.acquire(uniqueKey('close-b'), { ttl: 30_000 });
      const reference = await clients
        .create(redis.client())
        .acquire(uniqueKey('close-clock'), { ttl, autoRenew: true });
      await waitFor(() => log.scriptsOf(watched.token).includes('extend'), {
        message: 'the watchdog to renew',
      });

      await locks.close();

      await expect(admin.exists(watched.redisKey, plain.redisKey)).resolves.toBe(0);
      for (const handle of [watched, plain]) {
        expect(handle.isHeld()).toBe(false);
        expect(handle.signal.aborted).toBe(true);
      }
      const atClose = log.scriptsOf(reference.token).length;
      await waitFor(() => log.scriptsOf(reference.token).length >= atClose + 4, {
        message: 'four renewal periods after close',
      });
      expect(log.scriptsOf(watched.token).at(-1)).toBe('release');
      expect(log.scriptsOf(plain.token)).toEqual(['acquire', 'release']);

      // A closed client takes no new locks.
      const { error } = await rejectionOf(locks.acquire(uniqueKey('after-close')));
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect(error.message).toContain('closed');
    } finally {
      log.stop();
    }
  });
});
