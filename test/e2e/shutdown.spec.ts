/**
 * What `app.close()` does with the locks and connections of RedisLockModule, and configuration
 * through forRootAsync.
 */
import { jest } from '@jest/globals';
import { Logger, Module, type INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import {
  LockService,
  LockUnavailableError,
  RedisLockClient,
  RedisLockModule,
} from '../../lib/index.js';
import { QUIT_TIMEOUT } from '../../lib/redis-lock.constants.js';
import { nowMs, renewalSeen } from '../integration/helpers.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { CommandLog } from './fixtures/command-log.js';
import { lockKeysIn } from './fixtures/lock-keys.js';
import { Gate, within } from './fixtures/gate.js';
import { createJobsApp, ReportService } from './fixtures/jobs.app.js';

let redis: RedisServer;
let raw: Redis;
let log: CommandLog;
const apps: INestApplicationContext[] = [];

/** Renewals (the EXTEND script: key, token and ttl) the server received for `key`. */
const renewalsOf = (key: string) =>
  log.commands.filter(
    ([name, , , redisKey, , ttl]) =>
      (name === 'evalsha' || name === 'eval') && redisKey === key && ttl !== undefined,
  ).length;

async function startApp(...args: Parameters<typeof createJobsApp>) {
  const app = await createJobsApp(...args);
  apps.push(app);
  return app;
}

beforeAll(async () => {
  redis = await startRedis();
  raw = redis.client();
  log = await CommandLog.start(redis);
});

afterEach(async () => {
  for (const app of apps.splice(0)) {
    app.get(Gate).reset();
    await app.close();
  }
  await raw.flushall();
});

afterAll(async () => {
  log?.stop();
  await stopAllRedis();
});

/** Closes `app` now, and drops it from the apps afterEach closes. */
function closeApp(app: INestApplicationContext): Promise<void> {
  apps.splice(apps.indexOf(app), 1);
  return app.close();
}

describe('app.close()', () => {
  it('with drainTimeout: 0, releases at once the locks of in-flight calls and held handles, and quits the connection it created', async () => {
    const app = await startApp({ redis: redis.url, drainTimeout: 0 });
    const gate = app.get(Gate);
    gate.hold('report:1');
    const inFlight = app.get(ReportService).build('1');
    await gate.arrived('report:1');
    const handle = await app.get(LockService).acquire('manual');
    expect(await lockKeysIn(raw)).toEqual(['lock:{manual}', 'lock:{report:1}']);
    const connection = app.get(LockService).client.redis!;

    await app.close();

    expect(await lockKeysIn(raw)).toEqual([]);
    expect(connection.status).toBe('end');
    expect(handle.isHeld()).toBe(false);
    expect(handle.signal.aborted).toBe(true);
    // The call that was in flight still finishes; it just no longer holds anything.
    gate.release('report:1');
    await expect(inFlight).resolves.toBe('report 1');
  });

  it('stops renewing, and leaves a client passed in open', async () => {
    const userClient = redis.client();
    const app = await startApp({ redis: userClient, ttl: 150, drainTimeout: 0 });
    const gate = app.get(Gate);
    gate.hold('report:2');
    const inFlight = app.get(ReportService).build('2');
    await gate.arrived('report:2');
    log.clear();
    await waitFor(() => renewalsOf('lock:{report:2}') >= 2, {
      message: 'the watchdog to renew lock:report:2 (every 50 ms)',
    });

    await app.close();

    expect(await raw.exists('lock:{report:2}')).toBe(0);
    expect(userClient.status).toBe('ready');
    await expect(userClient.ping()).resolves.toBe('PONG');
    // A metronome on the same rhythm: once it has renewed three times, the closed app's watchdog
    // would have renewed too had it still been running.
    await log.sync();
    const renewalsAtClose = renewalsOf('lock:{report:2}');
    const metronome = new RedisLockClient({ redis: userClient, ttl: 150 });
    const tick = await metronome.acquire('metronome', { autoRenew: true });
    await waitFor(() => renewalsOf('lock:{metronome}') >= 3, {
      message: 'three metronome renewals',
    });
    await tick.release();
    await log.sync();
    expect(renewalsOf('lock:{report:2}')).toBe(renewalsAtClose);
    gate.release('report:2');
    await inFlight;
  });

  it('leaves no Timeout or TCP handle behind', async () => {
    const count = () => {
      const counts = new Map<string, number>();
      for (const type of process.getActiveResourcesInfo()) {
        counts.set(type, (counts.get(type) ?? 0) + 1);
      }
      return counts;
    };
    const watched = ['Timeout', 'TCPSocketWrap', 'TCPWrap', 'TCPServerWrap'];
    const before = count();

    // A lock is still held at close; drainTimeout: 0 releases it at once.
    const app = await startApp({ redis: redis.url, ttl: 300, drainTimeout: 0 });
    const service = app.get(LockService);
    await app.get(ReportService).build('3');
    const held = await service.acquire('held', { autoRenew: true });
    await expect(service.acquire('held', { waitTimeout: 100 })).rejects.toThrow();
    expect(held.isHeld()).toBe(true);
    // The measure sees the library's connection while the app runs.
    expect(count().get('TCPSocketWrap') ?? 0).toBeGreaterThan(before.get('TCPSocketWrap') ?? 0);
    apps.pop();

    await app.close();

    const leftovers = () =>
      watched
        .map((type) => `${type}: ${before.get(type) ?? 0} -> ${count().get(type) ?? 0}`)
        .join(', ');
    await waitFor(
      () => watched.every((type) => (count().get(type) ?? 0) <= (before.get(type) ?? 0)),
      { message: () => `the library's handles to be gone (${leftovers()})` },
    );
  });
});

describe('app.close() with work still running under a lock (drainTimeout)', () => {
  afterEach(() => jest.restoreAllMocks());

  it('keeps the lock of a running @Lock call held and renewed until it finishes, refusing new locks meanwhile, then releases it', async () => {
    const ttl = 300;
    const app = await startApp({ redis: redis.url, ttl });
    const service = app.get(LockService);
    const gate = app.get(Gate);
    gate.hold('report:5');
    const inFlight = app.get(ReportService).build('5');
    await gate.arrived('report:5');
    const other = new RedisLockClient({ redis: raw, logger: { warn: () => undefined } });

    let closed = false;
    const closing = closeApp(app).then(() => (closed = true));
    // Renewed after shutdown began: held past its ttl, not just left to run out.
    await renewalSeen(raw, 'lock:{report:5}');
    await expect(other.tryAcquire('report:5')).resolves.toBeNull();
    await expect(service.tryAcquire('fresh')).rejects.toBeInstanceOf(LockUnavailableError);
    expect(closed).toBe(false);

    gate.release('report:5');
    await expect(inFlight).resolves.toBe('report 5');
    await closing;
    expect(await lockKeysIn(raw)).toEqual([]);
    expect(service.client.redis!.status).toBe('end');
    await other.close();
  });

  it('releases the lock of work still running when drainTimeout (300 ms) runs out, and logs its key', async () => {
    const drainTimeout = 300;
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const app = await startApp({ redis: redis.url, drainTimeout });
    const gate = app.get(Gate);
    gate.hold('report:6');
    const inFlight = app.get(ReportService).build('6');
    await gate.arrived('report:6');

    const started = nowMs();
    const closing = closeApp(app);
    await waitFor(async () => (await raw.exists('lock:{report:6}')) === 0, {
      interval: 5,
      message: 'the lock of the unfinished call to be released',
    });
    const releasedAfter = nowMs() - started;
    await closing;

    expect(releasedAfter).toBeGreaterThanOrEqual(drainTimeout);
    expect(releasedAfter).toBeLessThan(drainTimeout + 200);
    const warnings = warn.mock.calls.map(([message]) => String(message));
    expect(warnings).toContainEqual(expect.stringContaining('"report:6"'));
    expect(warnings.join('\n')).toContain('drainTimeout');
    gate.release('report:6');
    await expect(inFlight).resolves.toBe('report 6');
  });

  it('refuses a drainTimeout that is not an integer of ms from 0 to 2^31-1 at startup', async () => {
    for (const drainTimeout of [-1, 1.5, 2 ** 31, Number.NaN]) {
      await expect(createJobsApp({ redis: redis.url, drainTimeout })).rejects.toThrow(
        /drainTimeout/,
      );
    }
  });
});

describe('app.close() with redis-server frozen (SIGSTOP)', () => {
  let frozen: RedisServer;

  beforeAll(async () => {
    frozen = await startRedis();
  });
  afterEach(() => frozen.resume());

  it(`resolves within QUIT_TIMEOUT (${QUIT_TIMEOUT} ms) + 500 ms with no lock held`, async () => {
    const app = await startApp({ redis: frozen.url });
    // Connected and ready: a frozen server then leaves QUIT unanswered.
    await app.get(LockService).isLocked('warm-up');
    await frozen.pause();

    const started = nowMs();
    await within(closeApp(app), QUIT_TIMEOUT + 500, 'app.close() with Redis frozen');
    expect(nowMs() - started).toBeLessThan(QUIT_TIMEOUT + 500);
  });

  it(`resolves within drainTimeout + ttl + QUIT_TIMEOUT + 500 ms with a lock held`, async () => {
    const ttl = 500;
    const drainTimeout = 200;
    const bound = drainTimeout + ttl + QUIT_TIMEOUT + 500;
    const app = await startApp({ redis: frozen.url, ttl, drainTimeout });
    const held = await app.get(LockService).acquire('frozen', { autoRenew: true });
    await frozen.pause();

    const started = nowMs();
    await within(closeApp(app), bound, 'app.close() with Redis frozen and a lock held');
    expect(nowMs() - started).toBeLessThan(bound);
    expect(held.isHeld()).toBe(false);
  });
});

describe('RedisLockModule.forRootAsync', () => {
  it('builds its options with useFactory from an injected provider', async () => {
    const LOCK_CONFIG = 'TEST:LOCK_CONFIG';
    @Module({
      providers: [{ provide: LOCK_CONFIG, useValue: { url: redis.url, prefix: 'async:' } }],
      exports: [LOCK_CONFIG],
    })
    class ConfigModule {}

    const app = await startApp(
      RedisLockModule.forRootAsync({
        imports: [ConfigModule],
        inject: [LOCK_CONFIG],
        useFactory: (config: { url: string; prefix: string }) => ({
          redis: config.url,
          keyPrefix: config.prefix,
        }),
      }),
    );
    const gate = app.get(Gate);
    gate.hold('report:4');
    const pending = app.get(ReportService).build('4');
    await gate.arrived('report:4');

    expect(await lockKeysIn(raw)).toEqual(['async:{report:4}']);

    gate.release('report:4');
    await expect(pending).resolves.toBe('report 4');
    expect(await lockKeysIn(raw)).toEqual([]);
  });
});
