import { inspect } from 'node:util';
import type { Redis } from 'ioredis';
import { fixedDelay } from '../../lib/core/waiting/retry.strategies.js';
import {
  InvalidLockKeyError,
  LockLostError,
  LockNotAcquiredError,
} from '../../lib/errors/lock.errors.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import {
  collectingLogger,
  commandCalls,
  LockClients,
  nowMs,
  rejectionOf,
  uniqueKey,
} from './helpers.js';
import { LOCK_BACKENDS, lockBackend } from './lock-backends.js';

const TOKEN = /^[0-9a-f]{48}$/;

describe.each(LOCK_BACKENDS)('RedisLockClient on %s: taking, holding and releasing', (name) => {
  const backend = lockBackend(name);
  const admin = backend.keys;
  it('tryAcquire returns a handle on a free key and null while another owner holds it', async () => {
    const locks = backend.client();
    const key = uniqueKey('try');

    const first = await locks.tryAcquire(key, { ttl: 10_000 });
    expect(first).not.toBeNull();
    expect(first!.isHeld()).toBe(true);
    await expect(locks.tryAcquire(key, { ttl: 10_000 })).resolves.toBeNull();
    await expect(backend.client().tryAcquire(key)).resolves.toBeNull();
    await expect(locks.isLocked(key)).resolves.toBe(true);

    await first!.release();
    await expect(locks.isLocked(key)).resolves.toBe(false);
    const again = await locks.tryAcquire(key);
    expect(again).not.toBeNull();
  });

  it('acquire with waitTimeout 0 fails at once with LockNotAcquiredError while the key is held', async () => {
    const locks = backend.client();
    const key = uniqueKey('busy');
    await locks.acquire(key);
    const { error } = await rejectionOf(locks.acquire(key));
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(error).toMatchObject({ key, aborted: false, waitedMs: 0 });
  });

  it('acquire waits while the key is held and gets it once the holder releases', async () => {
    const holderClient = backend.client();
    const waiterClient = backend.client();
    const key = uniqueKey('wait');
    const holder = await holderClient.acquire(key, { ttl: 10_000 });

    let settled = false;
    const waiting = waiterClient.acquire(key, { waitTimeout: 10_000 });
    void waiting.finally(() => (settled = true)).catch(() => undefined);
    // The waiter was turned away and sleeps on the key's release channel.
    await backend.subscribed(key);
    expect(settled).toBe(false);

    await expect(holder.release()).resolves.toBe(true);
    const handle = await waiting;
    expect(handle.isHeld()).toBe(true);
    await expect(admin.get(handle.redisKey)).resolves.toBe(handle.token);
  });

  it('stores a fresh 128-bit token (32 hex characters) as the key value on every grant', async () => {
    const locks = backend.client();
    const key = uniqueKey('token');
    const tokens = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const handle = await locks.acquire(key);
      expect(handle.token).toMatch(TOKEN);
      await expect(admin.get(`lock:{${key}}`)).resolves.toBe(handle.token);
      tokens.add(handle.token);
      await handle.release();
    }
    expect(tokens.size).toBe(50);
  });

  it('prefixes the Redis key with keyPrefix (default "lock:")', async () => {
    const key = uniqueKey('orders');
    const prefixed = await backend
      .client({ keyPrefix: 'app:locks:' })
      .acquire(key, { ttl: 10_000 });
    expect(prefixed.key).toBe(key);
    expect(prefixed.redisKey).toBe(`app:locks:{${key}}`);
    await expect(admin.get(`app:locks:{${key}}`)).resolves.toBe(prefixed.token);
    await expect(admin.exists(key, `lock:{${key}}`)).resolves.toBe(0);

    // Another prefix is another lock.
    const plain = await backend.client().acquire(key, { ttl: 10_000 });
    expect(plain.redisKey).toBe(`lock:{${key}}`);
    await expect(admin.get(`lock:{${key}}`)).resolves.toBe(plain.token);
  });

  it('gives the key the ttl as PTTL and lets it expire once the ttl has passed', async () => {
    const locks = backend.client();
    const key = uniqueKey('ttl');
    const before = nowMs();
    const handle = await locks.acquire(key, { ttl: 1500 });
    const pttl = await admin.pttl(handle.redisKey);
    expect(pttl).toBeGreaterThan(1200);
    expect(pttl).toBeLessThanOrEqual(1500);

    await waitFor(async () => (await admin.exists(handle.redisKey)) === 0, {
      timeout: 4000,
      interval: 10,
      message: 'the key to expire',
    });
    // Not before the ttl: the SET was sent after `before` (a few ms of clock slack).
    expect(nowMs() - before).toBeGreaterThanOrEqual(1500 - 5);
    await waitFor(() => handle.signal.aborted, { timeout: 1000, message: 'the signal to abort' });
    expect(handle.isHeld()).toBe(false);
    expect(handle.signal.reason).toBeInstanceOf(LockLostError);
    expect((handle.signal.reason as Error).message).toContain('lease ran out');
  });

  it('release returns true, deletes the key, and later calls resolve the same', async () => {
    const locks = backend.client();
    const handle = await locks.acquire(uniqueKey('release'), { ttl: 10_000 });

    const [first, concurrent] = await Promise.all([handle.release(), handle.release()]);
    expect(first).toBe(true);
    expect(concurrent).toBe(true);
    await expect(admin.exists(handle.redisKey)).resolves.toBe(0);
    await expect(handle.release()).resolves.toBe(true);
    expect(handle.isHeld()).toBe(false);
  });

  it('release of a lock that expired and was retaken returns false and leaves the new holder intact', async () => {
    const key = uniqueKey('retaken');
    const old = await backend.client().acquire(key, { ttl: 300 });
    await waitFor(async () => (await admin.exists(old.redisKey)) === 0, {
      message: 'the old lease to expire',
    });
    const current = await backend.client().acquire(key, { ttl: 10_000 });

    const extendError = (await rejectionOf(old.extend())).error;
    expect(extendError).toBeInstanceOf(LockLostError);
    await expect(old.release()).resolves.toBe(false);

    await expect(admin.get(current.redisKey)).resolves.toBe(current.token);
    expect(await admin.pttl(current.redisKey)).toBeGreaterThan(8000);
    expect(current.isHeld()).toBe(true);
  });

  it('extend and release of a lock deleted and retaken within its lease fail by token and keep the new holder', async () => {
    const key = uniqueKey('stolen');
    // No watchdog and a long lease: the old handle has no local reason to think it lost anything,
    // so only the token check in Redis protects the new holder.
    const old = await backend.client().acquire(key, { ttl: 60_000 });
    await admin.del(old.redisKey);
    const current = await backend.client().acquire(key, { ttl: 10_000 });

    const { error } = await rejectionOf(old.extend(60_000));
    expect(error).toBeInstanceOf(LockLostError);
    expect(error.message).toContain('deleted or is now held by another owner');
    await expect(old.release()).resolves.toBe(false);

    await expect(admin.get(current.redisKey)).resolves.toBe(current.token);
    const pttl = await admin.pttl(current.redisKey);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(10_000); // not the 60 s the old owner asked for
  });

  it('extend never re-creates a deleted key, and marks the handle lost', async () => {
    const handle = await backend.client().acquire(uniqueKey('deleted'), {
      ttl: 60_000,
    });
    await admin.del(handle.redisKey);

    const { error } = await rejectionOf(handle.extend());
    expect(error).toBeInstanceOf(LockLostError);
    await expect(admin.exists(handle.redisKey)).resolves.toBe(0);
    expect(handle.isHeld()).toBe(false);
    expect(handle.signal.aborted).toBe(true);
    expect(handle.signal.reason).toBe(error);
    // Still lost, still not re-created.
    await expect(handle.extend()).rejects.toBeInstanceOf(LockLostError);
    await expect(admin.exists(handle.redisKey)).resolves.toBe(0);
  });

  it('extend resets the lease to the ttl it is given (default: the original ttl)', async () => {
    const handle = await backend.client().acquire(uniqueKey('extend'), { ttl: 1000 });
    await waitFor(async () => (await admin.pttl(handle.redisKey)) < 700, {
      message: 'the lease to run down',
    });
    await handle.extend();
    expect(await admin.pttl(handle.redisKey)).toBeGreaterThan(900);

    await handle.extend(5000);
    expect(await admin.pttl(handle.redisKey)).toBeGreaterThan(4800);
    expect(handle.isHeld()).toBe(true);
    await expect(handle.extend(0)).rejects.toBeInstanceOf(RangeError);
    await expect(handle.extend(1.5)).rejects.toBeInstanceOf(RangeError);
  });

  it('extend with a shorter ttl shortens the local lease too: isHeld turns false when the key expires', async () => {
    const handle = await backend.client().acquire(uniqueKey('shorten'), {
      ttl: 20_000,
    });
    await handle.extend(300);
    expect(await admin.pttl(handle.redisKey)).toBeLessThanOrEqual(300);

    await waitFor(async () => (await admin.exists(handle.redisKey)) === 0, {
      message: 'the shortened lease to expire',
    });
    // The key is gone in Redis: the local view must not claim the lock for another 20 s.
    await waitFor(() => !handle.isHeld() && handle.signal.aborted, {
      timeout: 1000,
      message: 'the handle to notice its lease ran out',
    });
    expect(handle.signal.reason).toBeInstanceOf(LockLostError);
  });

  it('aborts the signal on release with an AbortError, not a LockLostError', async () => {
    const handle = await backend.client().acquire(uniqueKey('signal'));
    expect(handle.signal.aborted).toBe(false);
    await handle.release();
    expect(handle.signal.aborted).toBe(true);
    expect(handle.signal.reason).toBeInstanceOf(DOMException);
    expect((handle.signal.reason as DOMException).name).toBe('AbortError');
    expect(handle.signal.reason).not.toBeInstanceOf(LockLostError);
    await expect(handle.extend()).rejects.toThrow(/was released/);
  });

  it('keeps the token out of JSON and inspect output', async () => {
    const handle = await backend.client().acquire(uniqueKey('secret'));
    const shown = [JSON.stringify(handle), inspect(handle), inspect({ nested: handle })];
    for (const text of shown) {
      expect(text).toContain(handle.key);
      expect(text).not.toContain(handle.token);
    }
  });

  it('a signal first read after release or loss is already aborted with the right reason', async () => {
    const locks = backend.client();
    const released = await locks.acquire(uniqueKey('late-read-released'));
    await released.release();
    expect(released.signal.aborted).toBe(true);
    expect(released.signal.reason).toBeInstanceOf(DOMException);

    const lost = await locks.acquire(uniqueKey('late-read-lost'));
    await admin.del(`lock:{${lost.key}}`);
    await expect(lost.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(lost.signal.aborted).toBe(true);
    expect(lost.signal.reason).toBeInstanceOf(LockLostError);
  });

  it('a handle without watchdog whose lease lapsed is reported once, when the lapse is seen', async () => {
    const logger = collectingLogger();
    const locks = backend.client({ logger });
    const handle = await locks.acquire(uniqueKey('lapsed'), { ttl: 100 });
    expect(logger.messages).toEqual([]);
    await waitFor(() => !handle.isHeld(), { timeout: 2_000, message: 'the lease to lapse' });
    expect(logger.messages).toHaveLength(1);
    expect(logger.messages[0]).toMatch(/lease ran out/);
    expect(logger.messages[0]).not.toContain(handle.token);

    await expect(handle.release()).resolves.toBe(false);
    expect(logger.messages).toHaveLength(1);
  });

  it('released unseen after its lease lapsed, a handle without watchdog is reported by the release', async () => {
    const logger = collectingLogger();
    const locks = backend.client({ logger });
    const handle = await locks.acquire(uniqueKey('lapsed-unseen'), { ttl: 100 });
    await waitFor(async () => (await admin.exists(handle.redisKey)) === 0, {
      interval: 5,
      message: 'the key to expire',
    });
    await expect(handle.release()).resolves.toBe(false);
    expect(logger.messages).toHaveLength(1);
    expect(logger.messages[0]).toMatch(/lease ran out/);
  });
  it('an abort listener called by release already sees the handle as not held', async () => {
    const handle = await backend.client().acquire(uniqueKey('listener'));
    const seen: boolean[] = [];
    handle.signal.addEventListener('abort', () => seen.push(handle.isHeld()));
    await handle.release();
    expect(seen).toEqual([false]);
  });
});

describe('RedisLockClient: taking, holding and releasing (Redis only)', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  it('with pubSub: false, a waiter polls with its retry strategy until the holder releases', async () => {
    const holderClient = clients.create(redis.client());
    const waiterClient = clients.create(redis.client(), { pubSub: false });
    const key = uniqueKey('poll');
    const holder = await holderClient.acquire(key, { ttl: 10_000 });
    const setsBefore = await commandCalls(admin, 'set');

    let settled = false;
    const waiting = waiterClient.acquire(key, { waitTimeout: 10_000, retry: fixedDelay(20) });
    void waiting.finally(() => (settled = true)).catch(() => undefined);
    // The waiter is retrying (several SET NX have failed) and has not got the lock.
    await waitFor(async () => (await commandCalls(admin, 'set')) >= setsBefore + 3, {
      message: 'the waiter to retry',
    });
    expect(settled).toBe(false);
    const [, subscribers] = (await admin.call('PUBSUB', 'NUMSUB', `lock:{${key}}:released`)) as [
      string,
      number,
    ];
    expect(subscribers).toBe(0);

    await expect(holder.release()).resolves.toBe(true);
    const handle = await waiting;
    expect(handle.isHeld()).toBe(true);
  });

  it('rejects invalid keys and options before touching Redis', async () => {
    const locks = clients.create(redis.client());
    const setsBefore = await commandCalls(admin, 'set');
    await expect(locks.acquire('')).rejects.toBeInstanceOf(InvalidLockKeyError);
    await expect(locks.acquire('k'.repeat(1025))).rejects.toBeInstanceOf(InvalidLockKeyError);
    await expect(locks.tryAcquire(undefined as unknown as string)).rejects.toBeInstanceOf(
      InvalidLockKeyError,
    );
    await expect(locks.acquire('k', { ttl: 0 })).rejects.toThrow(/Invalid lock option "ttl"/);
    await expect(locks.acquire('k', { ttl: 1.5 })).rejects.toBeInstanceOf(RangeError);
    await expect(locks.acquire('k', { waitTimeout: -1 })).rejects.toThrow(/"waitTimeout"/);
    await expect(locks.acquire('k', { waitTimeout: Number.NaN })).rejects.toThrow(/"waitTimeout"/);
    await expect(locks.acquire('k', { retry: 5 as never })).rejects.toBeInstanceOf(TypeError);
    await expect(commandCalls(admin, 'set')).resolves.toBe(setsBefore);
    // The longest key allowed works.
    const longest = await locks.acquire('k'.repeat(1024));
    expect(longest.isHeld()).toBe(true);
  });
});
