/**
 * What `app.close()` does with the locks and connections of RedisLockModule, and configuration
 * through forRootAsync.
 */
import { Module, type INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { LockService, RedisLockClient, RedisLockModule } from '../../lib/index.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { CommandLog } from './fixtures/command-log.js';
import { lockKeysIn } from './fixtures/lock-keys.js';
import { Gate } from './fixtures/gate.js';
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

describe('app.close()', () => {
  it('releases the locks of in-flight calls and held handles, and quits the connection it created', async () => {
    const app = await startApp({ redis: redis.url });
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
    const app = await startApp({ redis: userClient, ttl: 150 });
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

    const app = await startApp({ redis: redis.url, ttl: 300 });
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
