import { Redis, type RedisOptions } from 'ioredis';
import { exponentialBackoff, fixedDelay } from '../../lib/core/waiting/retry.strategies.js';
import { LockNotAcquiredError, LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { freePort, startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import {
  collectingLogger,
  CommandLog,
  LockClients,
  nowMs,
  rejectionOf,
  uniqueKey,
} from './helpers.js';
import { LOCK_BACKENDS, lockBackend } from './lock-backends.js';

/**
 * An ioredis client of a port nobody listens on. `disconnectTimeout: 0`: ioredis's disconnect()
 * of a client that is between reconnects arms a 2 s timer on the already-closed socket, which
 * would keep the test process alive.
 */
function clientOfNothing(port: number, options: RedisOptions = {}): Redis {
  const client = new Redis({ host: '127.0.0.1', port, disconnectTimeout: 0, ...options });
  client.on('error', () => undefined);
  return client;
}

describe('RedisLockClient: waiting, giving up, and Redis being away', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(async () => {
    await admin.call('CLIENT', 'UNPAUSE');
    await clients.closeAll();
  });
  afterAll(() => stopAllRedis());

  /** Resolves once a client is blocked by CLIENT PAUSE, i.e. its write is in flight. */
  async function writeInFlight(): Promise<void> {
    await waitFor(async () => /blocked_clients:[1-9]/.test(await admin.info('clients')), {
      message: 'a write to be held by CLIENT PAUSE',
    });
  }

  describe('deadline and abort', () => {
    it('with an already aborted signal, sends nothing and rejects with aborted: true (tryAcquire too)', async () => {
      const log = await CommandLog.start(admin);
      try {
        const key = uniqueKey('pre-aborted');
        const locks = clients.create(redis.client());
        const signal = AbortSignal.abort();
        await expect(locks.acquire(key, { signal })).rejects.toMatchObject({ aborted: true });
        await expect(locks.tryAcquire(key, { signal })).rejects.toBeInstanceOf(
          LockNotAcquiredError,
        );
        await admin.ping('marker');
        await waitFor(() => log.commands.some((args) => args.includes('marker')));
        expect(log.commands.filter((args) => args.includes(`lock:{${key}}`))).toEqual([]);
        await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
      } finally {
        log.stop();
      }
    });
  });

  describe('an attempt in flight when the wait ends leaves no orphan key', () => {
    /** Runs `giveUp` on an attempt held by CLIENT PAUSE, then shows its SET was undone. */
    async function expectNoOrphan(
      key: string,
      start: (redisClient: Redis) => Promise<unknown>,
      expectError: (error: Error, ms: number) => void,
    ): Promise<void> {
      const log = await CommandLog.start(admin);
      try {
        const lockRedis = redis.client();
        await lockRedis.ping(); // connected, so the SET is written at once
        await admin.call('CLIENT', 'PAUSE', '5000', 'WRITE');
        const attempt = rejectionOf(start(lockRedis));
        await writeInFlight();
        const { error, ms } = await attempt;
        expectError(error, ms);
        // Still paused: the SET has not run yet.
        await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);

        await admin.call('CLIENT', 'UNPAUSE');
        const scripts = () => {
          const set = log.commands.find((a) => a[0] === 'set' && a[1] === `lock:{${key}}`);
          return set ? { token: set[2], after: log.scriptsOf(set[2]) } : undefined;
        };
        // The late SET went through, and its token was then used to release the key.
        await waitFor(() => scripts()?.after.includes('release') === true, {
          message: 'the orphaned SET to be released',
        });
        await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
      } finally {
        log.stop();
      }
    }

    it('when the signal aborts', async () => {
      const key = uniqueKey('orphan-abort');
      const controller = new AbortController();
      let abortedAt = 0;
      await expectNoOrphan(
        key,
        (lockRedis) => {
          const attempt = clients
            .create(lockRedis)
            .acquire(key, { ttl: 30_000, waitTimeout: 10_000, signal: controller.signal });
          void writeInFlight().then(() => {
            abortedAt = nowMs();
            controller.abort();
          });
          return attempt;
        },
        (error) => {
          expect(error).toBeInstanceOf(LockNotAcquiredError);
          expect(error).toMatchObject({ aborted: true });
          expect(nowMs() - abortedAt).toBeLessThan(500);
        },
      );
    });

    it('when the deadline passes (unavailable: Redis answered no attempt of the wait)', async () => {
      const key = uniqueKey('orphan-deadline');
      await expectNoOrphan(
        key,
        (lockRedis) => clients.create(lockRedis).acquire(key, { ttl: 30_000, waitTimeout: 200 }),
        (error, ms) => {
          expect(error).toBeInstanceOf(LockUnavailableError);
          expect(ms).toBeGreaterThanOrEqual(198);
          expect(ms).toBeLessThan(1500);
        },
      );
    });

    it('when Redis does not answer within the attempt timeout (min(ttl, 2 s))', async () => {
      const key = uniqueKey('orphan-timeout');
      await expectNoOrphan(
        key,
        (lockRedis) => clients.create(lockRedis).tryAcquire(key, { ttl: 500 }),
        (error, ms) => {
          expect(error).toBeInstanceOf(LockUnavailableError);
          expect(error.message).toContain('did not answer within 500 ms');
          expect(ms).toBeGreaterThanOrEqual(495);
          expect(ms).toBeLessThan(2000);
        },
      );
    });
  });

  describe('Redis unreachable', () => {
    it('fails fast with LockUnavailableError on a port with nothing listening, and run() never calls fn', async () => {
      const port = await freePort();
      // A new client per call, made just before it: ioredis backs off longer after every failed
      // reconnect, from the moment the client is created.
      const dead: Redis[] = [];
      const lockClient = () => {
        dead.push(clientOfNothing(port, { maxRetriesPerRequest: 1 }));
        return clients.create(dead[dead.length - 1]);
      };
      try {
        let called = false;
        const run = await rejectionOf(lockClient().run('k', () => (called = true)));
        expect(run.error).toBeInstanceOf(LockUnavailableError);
        expect(run.ms).toBeLessThan(1000);
        expect(called).toBe(false);

        const attempt = await rejectionOf(lockClient().tryAcquire('k'));
        expect(attempt.error).toBeInstanceOf(LockUnavailableError);
        expect(attempt.ms).toBeLessThan(1000);

        const probe = await rejectionOf(lockClient().isLocked('k'));
        expect(probe.error).toBeInstanceOf(LockUnavailableError);
        expect(probe.ms).toBeLessThan(1000);
      } finally {
        for (const client of dead) client.disconnect();
      }
    });

    it('with ioredis defaults (which would retry ~20 times), ends the wait with the attempt timeout (ttl 700 ms), within 2 s', async () => {
      const port = await freePort();
      const deadRedis = clientOfNothing(port);
      try {
        let called = false;
        const { error, ms } = await rejectionOf(
          clients.create(deadRedis).run('k', () => (called = true), { ttl: 700 }),
        );
        expect(error).toBeInstanceOf(LockUnavailableError);
        expect(error.message).toContain('did not answer within 700 ms');
        expect(ms).toBeLessThan(2000);
        expect(called).toBe(false);
      } finally {
        deadRedis.disconnect();
      }
    });

    it('fails fast when the server is killed, and works again once it is back', async () => {
      const server = await startRedis();
      const lockRedis = server.client({ maxRetriesPerRequest: 1 });
      const locks = clients.create(lockRedis);
      const first = await locks.acquire('k', { ttl: 30_000 });
      expect(first.isHeld()).toBe(true);

      server.kill('SIGKILL');
      await server.exited;
      let called = false;
      const { error, ms } = await rejectionOf(locks.run('other', () => (called = true)));
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect(error.message).toContain('Redis is unavailable, so lock "other" could not be handled');
      expect(ms).toBeLessThan(1500);
      expect(called).toBe(false);

      await server.restart();
      await waitFor(() => lockRedis.status === 'ready', { message: 'the client to reconnect' });
      await expect(locks.run('other', () => 'ran')).resolves.toBe('ran');
      await server.stop();
    });

    it('release is bounded like an attempt: run() returns soon when Redis dies while fn runs (ioredis defaults)', async () => {
      const server = await startRedis();
      // ioredis defaults: a command waits through ~20 reconnects, over a minute when nobody answers.
      const lockRedis = clientOfNothing(server.port);
      try {
        const logger = collectingLogger();
        const locks = clients.create(lockRedis, { logger });
        const other = await locks.acquire('other', { ttl: 30_000 });
        let otherRelease: ReturnType<typeof rejectionOf> | undefined;
        const started = nowMs();
        const result = await locks.run('k', async () => {
          server.kill('SIGKILL');
          await server.exited;
          // A direct release() at the same time, bounded the same way.
          otherRelease = rejectionOf(other.release());
          return 'done';
        });
        expect(result).toBe('done');
        expect(nowMs() - started).toBeLessThan(4000);
        expect(logger.messages).toEqual([expect.stringContaining('Could not release lock "k"')]);
        expect(logger.messages[0]).toContain('did not answer within 2000 ms');

        const { error, ms } = await otherRelease!;
        expect(error).toBeInstanceOf(LockUnavailableError);
        expect(ms).toBeLessThan(4000);
      } finally {
        lockRedis.disconnect();
        await server.stop();
      }
    });

    it('run() still returns when the release fails, and logs it without the token', async () => {
      const logger = collectingLogger();
      const locks = clients.create(redis.client({ commandTimeout: 100 }), { logger });
      const key = uniqueKey('release-fails');
      let token = '';
      const result = await locks.run(key, async (lock) => {
        token = lock.token;
        await admin.call('CLIENT', 'PAUSE', '1000', 'WRITE');
        return 'done';
      });
      expect(result).toBe('done');
      expect(logger.messages).toEqual([expect.stringContaining(`Could not release lock "${key}"`)]);
      expect(logger.messages[0]).toContain('it will expire when its lease runs out');
      expect(logger.messages[0]).not.toContain(token);
    });
  });
});

describe.each(LOCK_BACKENDS)('RedisLockClient on %s: deadline and abort', (name) => {
  const backend = lockBackend(name);

  /** A key held by another client for the whole test. */
  async function heldKey(label: string): Promise<string> {
    const key = uniqueKey(label);
    await backend.client().acquire(key, { ttl: 30_000 });
    return key;
  }

  it('gives up at waitTimeout: LockNotAcquiredError after at least 300 ms and well before 1500 ms', async () => {
    const key = await heldKey('deadline');
    const locks = backend.client();
    const { error, ms } = await rejectionOf(
      locks.acquire(key, { waitTimeout: 300, retry: exponentialBackoff({ base: 10, cap: 100 }) }),
    );
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(error).toMatchObject({ key, aborted: false });
    expect(ms).toBeGreaterThanOrEqual(298);
    expect(ms).toBeLessThan(1500);
    expect((error as LockNotAcquiredError).waitedMs).toBeGreaterThanOrEqual(298);
    expect(error.message).toMatch(/gave up after waiting \d+ ms/);
  });

  it('gives up at waitTimeout even when the retry strategy asks for a longer pause', async () => {
    const key = await heldKey('long-retry');
    const { error, ms } = await rejectionOf(
      backend.client().acquire(key, { waitTimeout: 300, retry: fixedDelay(5000) }),
    );
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(ms).toBeGreaterThanOrEqual(298);
    expect(ms).toBeLessThan(1500);
  });

  it('ends the wait at once when the retry strategy returns null', async () => {
    const key = await heldKey('null-retry');
    const asked: number[] = [];
    const { error, ms } = await rejectionOf(
      backend.client({ pubSub: false }).acquire(key, {
        waitTimeout: 10_000,
        retry: (attempt) => (asked.push(attempt), attempt < 3 ? 10 : null),
      }),
    );
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(asked).toEqual([1, 2, 3]);
    expect(ms).toBeLessThan(1000);
  });

  it('rejects within 500 ms with aborted: true when the signal aborts mid-wait (not after the 2 s pause)', async () => {
    const key = await heldKey('abort');
    const controller = new AbortController();
    let abortedAt = 0;
    // A quick first retry, then a long pause; the abort comes while the waiter sleeps in it.
    const retry = (attempt: number) => {
      if (attempt === 1) return 10;
      setImmediate(() => {
        abortedAt = nowMs();
        controller.abort();
      });
      return 2000;
    };
    const waiting = backend
      .client({ pubSub: false })
      .acquire(key, { waitTimeout: 10_000, retry, signal: controller.signal });
    const { error } = await rejectionOf(waiting);
    const rejectedAt = nowMs();
    expect(abortedAt).toBeGreaterThan(0);
    expect(rejectedAt - abortedAt).toBeLessThan(500); // instead of sleeping 2000 ms
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(error).toMatchObject({ key, aborted: true });
    expect(error.message).toContain('was aborted');
  });
});
