/**
 * Compatibility fixture: a tiny ESM Nest app that uses the packed library the way a user would.
 * `test/compat/run.sh` installs it next to NestJS 11 (CommonJS) and ioredis 5, compiles it with
 * this repo's TypeScript (so the shipped .d.ts files are checked against those versions too) and
 * runs it against a private redis-server whose URL it passes in REDIS_URL.
 *
 * Prints one `ok - ...` line per check; the first failed check exits 1.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Controller, Injectable, Module, Param, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { Lock, LockService, RedisLockModule } from 'nestjs-redis-lock';

const REDIS_URL = process.env.REDIS_URL ?? '';
const KEY_PREFIX = 'compat:';
const DEADLINE_MS = 5_000;

/** A promise the test settles by hand, so the handler holds its lock exactly as long as needed. */
function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const payment = { entered: deferred(), release: deferred() };

@Controller('orders')
class OrdersController {
  @Post(':id/pay')
  @Lock('order:{{id}}')
  async pay(@Param('id') id: string) {
    payment.entered.resolve();
    await payment.release.promise;
    return { id, paid: true };
  }
}

@Injectable()
class JobService {
  runs = 0;
  heldWhileRunning: boolean | undefined;

  constructor(private readonly locks: LockService) {}

  @Lock('job', { onNotAcquired: 'skip' })
  async tick(): Promise<string> {
    this.runs++;
    this.heldWhileRunning = await this.locks.isLocked('job');
    return 'ran';
  }
}

@Module({
  imports: [RedisLockModule.forRoot({ redis: REDIS_URL, keyPrefix: KEY_PREFIX })],
  controllers: [OrdersController],
  providers: [JobService],
})
class AppModule {}

/** Rejects if `promise` does not settle within DEADLINE_MS. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), DEADLINE_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every 20 ms until it holds, failing after DEADLINE_MS. */
async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function check(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
    console.log(`ok - ${name}`);
  } catch (error) {
    console.log(`not ok - ${name}`);
    console.error(error);
    process.exit(1);
  }
}

/** The installed version; read from disk, as not every package exports its package.json. */
function versionOf(name: string): string {
  const manifest = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

async function main(): Promise<void> {
  assert.ok(REDIS_URL, 'REDIS_URL must point at the private redis-server');
  const versions = [
    '@nestjs/common',
    '@nestjs/core',
    '@nestjs/platform-express',
    'ioredis',
    'rxjs',
    'reflect-metadata',
  ];
  console.log(`# ${versions.map((name) => `${name}@${versionOf(name)}`).join(' ')}`);

  // A client of our own to look at Redis from outside the app.
  const redis = new Redis(REDIS_URL);
  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  const locks = app.get(LockService);
  const jobs = app.get(JobService);

  await check('@Lock on a controller: concurrent requests for one id get 201 and 423', async () => {
    const pay = () => fetch(`${url}/orders/42/pay`, { method: 'POST' });
    const first = pay();
    await within(payment.entered.promise, 'the first request to enter the handler');
    assert.equal(await redis.exists(`${KEY_PREFIX}{order:42}`), 1, 'order lock is in Redis');
    const second = await within(pay(), 'the second request');
    assert.equal(second.status, 423, 'second request is refused while the first holds the lock');
    assert.equal(((await second.json()) as { statusCode: number }).statusCode, 423);
    payment.release.resolve();
    const firstResponse = await within(first, 'the first request');
    assert.equal(firstResponse.status, 201);
    assert.deepEqual(await firstResponse.json(), { id: '42', paid: true });
    assert.equal(await redis.exists(`${KEY_PREFIX}{order:42}`), 0, 'order lock released');
    assert.equal((await within(pay(), 'a later request')).status, 201, 'free again afterwards');
  });

  await check("@Lock on a provider with onNotAcquired: 'skip'", async () => {
    const held = await locks.acquire('job');
    assert.equal(await jobs.tick(), undefined, 'skipped while another owner holds the lock');
    assert.equal(jobs.runs, 0);
    assert.equal(await held.release(), true);
    assert.equal(await jobs.tick(), 'ran', 'runs once the lock is free');
    assert.equal(jobs.runs, 1);
    assert.equal(jobs.heldWhileRunning, true, 'the lock is held while the method runs');
    assert.equal(await locks.isLocked('job'), false, 'and released afterwards');
  });

  await check('LockService.run', async () => {
    const result = await locks.run('report', async (lock) => {
      assert.ok(lock.isHeld());
      assert.equal(await redis.get(`${KEY_PREFIX}{report}`), lock.token, 'our token is in Redis');
      assert.equal(await locks.tryAcquire('report'), null, 'busy for anyone else');
      return 7;
    });
    assert.equal(result, 7);
    assert.equal(await locks.isLocked('report'), false);
  });

  await check('app.close() closes the connection the module opened', async () => {
    await within(app.close(), 'app.close()');
    // Only our own client may remain connected.
    const clientCount = async () =>
      String(await redis.client('LIST'))
        .trim()
        .split('\n').length;
    await waitFor(async () => (await clientCount()) === 1, "the module's connection to close");
    await redis.quit();
  });

  // Nothing may keep the process alive now: a leftover socket or timer fails the run.
  const watchdog = setTimeout(() => {
    console.log('not ok - the process exits on its own after app.close()');
    console.error('still active:', process.getActiveResourcesInfo());
    process.exit(1);
  }, DEADLINE_MS);
  watchdog.unref();
  process.once('exit', (code) => {
    if (code === 0) console.log('ok - the process exits on its own after app.close()');
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
