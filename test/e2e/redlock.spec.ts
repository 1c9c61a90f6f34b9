/**
 * RedisLockModule with `redlock`: three independent masters given as URLs. LockService and @Lock
 * work on a majority of them, the module's own connections are closed on shutdown, and options
 * naming neither `redis` nor `redlock` (or both) stop the app at startup.
 */
import {
  Injectable,
  Module,
  type DynamicModule,
  type INestApplicationContext,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Redis } from 'ioredis';
import {
  Lock,
  LockNotAcquiredError,
  LockService,
  RedisLockModule,
  type RedisLockModuleOptions,
} from '../../lib/index.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { deferred, type Deferred } from './fixtures/gate.js';

const MASTERS = 3;
const MAJORITY = 2;

/** A job only one caller may run at a time per id, holding its lock until the test says so. */
@Injectable()
class Jobs {
  active = 0;
  maxActive = 0;
  readonly started: string[] = [];
  private readonly holds = new Map<string, Deferred>();

  /** Makes the next `work(id)` wait inside the lock until `finish(id)`. */
  hold(id: string): void {
    this.holds.set(id, deferred());
  }

  finish(id: string): void {
    this.holds.get(id)?.resolve();
  }

  @Lock('job:{{id}}', { ttl: 5_000 })
  async work(id: string): Promise<string> {
    this.maxActive = Math.max(this.maxActive, ++this.active);
    this.started.push(id);
    try {
      await this.holds.get(id)?.promise;
      return `done ${id}`;
    } finally {
      this.active--;
    }
  }
}

/** An app context with the lock module (`options` as given) and `Jobs`. */
async function createApp(options: RedisLockModuleOptions): Promise<INestApplicationContext> {
  const lockModule: DynamicModule = RedisLockModule.forRoot(options);

  @Module({ imports: [lockModule], providers: [Jobs] })
  class RedlockAppModule {}

  const app = await NestFactory.createApplicationContext(RedlockAppModule, {
    logger: false,
    abortOnError: false,
  });
  await app.init();
  return app;
}

let masters: RedisServer[];
let admins: Redis[];

/**
 * The masters as URLs. nodeTimeout 200 rather than the default 50: the module's connections are
 * fresh, and on a loaded machine a first answer (connect, then NOSCRIPT and EVAL) can be slow.
 */
function redlockOfUrls(): RedisLockModuleOptions {
  return { redlock: { clients: masters.map((node) => node.url), nodeTimeout: 200 } };
}

/** How many masters have the lock key of `key` (default prefix). */
async function mastersHolding(key: string): Promise<number> {
  const found = await Promise.all(admins.map((redis) => redis.exists(`lock:{${key}}`)));
  return found.filter((n) => n === 1).length;
}

/** Connections on a master, ours included. */
async function connectedClients(redis: Redis): Promise<number> {
  const info = await redis.info('clients');
  return Number(/^connected_clients:(\d+)/m.exec(info)?.[1]);
}

beforeAll(async () => {
  masters = await Promise.all(Array.from({ length: MASTERS }, () => startRedis()));
  admins = masters.map((node) => node.client());
  await Promise.all(admins.map((redis) => redis.ping()));
});

afterAll(() => stopAllRedis());

describe('RedisLockModule.forRoot({ redlock: { clients: [3 URLs] } })', () => {
  let app: INestApplicationContext | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('runs LockService.run under a lock held on the masters, and releases it', async () => {
    app = await createApp(redlockOfUrls());
    const locks = app.get(LockService);

    const result = await locks.run('report', async (lock) => {
      expect(lock.isHeld()).toBe(true);
      expect(await mastersHolding('report')).toBeGreaterThanOrEqual(MAJORITY);
      expect(await locks.isLocked('report')).toBe(true);
      // Exclusive while held.
      expect(await locks.tryAcquire('report')).toBeNull();
      return 42;
    });

    expect(result).toBe(42);
    expect(await mastersHolding('report')).toBe(0);
    expect(await locks.isLocked('report')).toBe(false);
  });

  it('makes a @Lock method refuse a concurrent call with the same key, and not one with another', async () => {
    app = await createApp(redlockOfUrls());
    const jobs = app.get(Jobs);

    jobs.hold('a');
    const first = jobs.work('a');
    await waitFor(() => jobs.started.includes('a'), { message: 'the first call to run' });
    expect(await mastersHolding('job:a')).toBeGreaterThanOrEqual(MAJORITY);

    await expect(jobs.work('a')).rejects.toBeInstanceOf(LockNotAcquiredError);
    expect(await jobs.work('b')).toBe('done b');

    jobs.finish('a');
    expect(await first).toBe('done a');
    expect(jobs.started.filter((id) => id === 'a')).toHaveLength(1);
    expect(await mastersHolding('job:a')).toBe(0);
    expect(await jobs.work('a')).toBe('done a');
    // Only the 'a' and 'b' calls overlapped, never two 'a's.
    expect(jobs.maxActive).toBeLessThanOrEqual(2);
  });

  it('closes the connections it opened to every master on shutdown', async () => {
    const before = await Promise.all(admins.map(connectedClients));
    app = await createApp(redlockOfUrls());
    await app.get(LockService).run('opened', () => undefined);
    // One connection per master, no more (no pub/sub connection under Redlock).
    await waitFor(
      async () => {
        const during = await Promise.all(admins.map(connectedClients));
        return during.every((n, i) => n === before[i] + 1);
      },
      { message: 'one module connection on each master' },
    );

    await app.close();
    app = undefined;
    await waitFor(
      async () =>
        (await Promise.all(admins.map(connectedClients))).every((n, i) => n === before[i]),
      { message: 'the module connections to close' },
    );
  });

  it('keeps locking with one of the 3 masters killed (masters given as ioredis options)', async () => {
    app = await createApp({
      redlock: {
        // disconnectTimeout 0: closing a connection that is reconnecting to the dead master
        // arms no timer that would outlive the test.
        clients: masters.map((node) => ({
          host: '127.0.0.1',
          port: node.port,
          disconnectTimeout: 0,
        })),
        nodeTimeout: 200,
      },
    });
    const locks = app.get(LockService);
    const jobs = app.get(Jobs);
    const dead = masters[2];
    dead.kill('SIGKILL');
    await dead.exited;
    try {
      expect(
        await locks.run('degraded', async () => {
          expect(await locks.tryAcquire('degraded')).toBeNull();
          return 'ran';
        }),
      ).toBe('ran');

      jobs.hold('c');
      const first = jobs.work('c');
      await waitFor(() => jobs.started.includes('c'), { message: 'the first call to run' });
      await expect(jobs.work('c')).rejects.toBeInstanceOf(LockNotAcquiredError);
      jobs.finish('c');
      expect(await first).toBe('done c');
      expect(await locks.isLocked('job:c')).toBe(false);
    } finally {
      await app.close();
      app = undefined;
      await dead.restart();
    }
  });
});

describe('RedisLockModule.forRoot with neither or both of redis and redlock', () => {
  it('fails at startup with a TypeError when given neither', async () => {
    const startup = createApp({});
    await expect(startup).rejects.toBeInstanceOf(TypeError);
    await expect(startup).rejects.toThrow(
      'RedisLockModule: give `redis` (a URL, ioredis options or client) or `redlock: { clients }`.',
    );
  });

  it('fails at startup with a TypeError when given both, before connecting anywhere', async () => {
    const before = await Promise.all(admins.map(connectedClients));
    const startup = createApp({
      redis: masters[0].url,
      redlock: { clients: masters.map((node) => node.url) },
    });
    await expect(startup).rejects.toBeInstanceOf(TypeError);
    await expect(startup).rejects.toThrow('give either `redis` or `redlock`, not both');
    const after = await Promise.all(admins.map(connectedClients));
    after.forEach((n, i) => expect(n).toBeLessThanOrEqual(before[i]));
  });
});
