/**
 * The contention features through Nest: `@Lock` with several keys, `LockService` with several
 * keys, and the module options `fair`, `fairQueueTimeout`, `pubSub` and `maxLocalPasses` reaching
 * the locks.
 */
import type { INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { LockNotAcquiredError, LockService } from '../../lib/index.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { commandCalls } from '../integration/helpers.js';
import { waitFor } from '../support/wait-for.js';
import { Gate } from './fixtures/gate.js';
import { createJobsApp, LedgerService } from './fixtures/jobs.app.js';
import { lockKeysIn } from './fixtures/lock-keys.js';

let redis: RedisServer;
let raw: Redis;
let apps: INestApplicationContext[] = [];

beforeAll(async () => {
  redis = await startRedis();
  raw = redis.client();
});

afterEach(async () => {
  await Promise.all(apps.map((app) => app.close()));
  apps = [];
  expect(await lockKeysIn(raw)).toEqual([]);
});

afterAll(() => stopAllRedis());

async function app(options: Record<string, unknown> = {}): Promise<INestApplicationContext> {
  const created = await createJobsApp({ redis: redis.url, ...options });
  apps.push(created);
  return created;
}

describe('@Lock with several keys', () => {
  it('holds every key while the method runs, refuses overlapping calls in either order, and releases all', async () => {
    const ledger = await app();
    const gate = ledger.get(Gate);
    gate.hold('transfer:a:b');
    const first = ledger.get(LedgerService).transfer('a', 'b');
    await gate.arrived('transfer:a:b');
    expect(await lockKeysIn(raw)).toEqual(['lock:{account:a}', 'lock:{account:b}']);

    // Same keys named the other way round, or sharing one key: refused (waitTimeout 0).
    const other = await app();
    for (const [from, to] of [
      ['b', 'a'],
      ['c', 'a'],
    ]) {
      await expect(other.get(LedgerService).transfer(from, to)).rejects.toBeInstanceOf(
        LockNotAcquiredError,
      );
    }
    // Disjoint keys run at once.
    await expect(other.get(LedgerService).transfer('c', 'd')).resolves.toBe('c -> d');
    expect(await lockKeysIn(raw)).toEqual(['lock:{account:a}', 'lock:{account:b}']);

    gate.release('transfer:a:b');
    await expect(first).resolves.toBe('a -> b');
  });

  it('locks one key when both placeholders resolve to the same value', async () => {
    const ledger = await app();
    const gate = ledger.get(Gate);
    gate.hold('transfer:a:a');
    const self = ledger.get(LedgerService).transfer('a', 'a');
    await gate.arrived('transfer:a:a');
    expect(await lockKeysIn(raw)).toEqual(['lock:{account:a}']);
    gate.release('transfer:a:a');
    await expect(self).resolves.toBe('a -> a');
  });
});

describe('LockService and module options', () => {
  it('takes several keys at once and gives a fencing token', async () => {
    const locks = (await app()).get(LockService);
    const lock = await locks.acquire(['y', 'x']);
    expect(lock.keys).toEqual(['x', 'y']);
    expect(typeof lock.fencingToken).toBe('bigint');
    await expect(locks.tryAcquire('x')).resolves.toBeNull();
    await expect(lock.release()).resolves.toBe(true);
    const next = await locks.acquire('x');
    expect(next.fencingToken).toBeGreaterThan(lock.fencingToken);
    await next.release();
  });

  it('maxLocalPasses reaches the client: the default passes a released lock to a waiter of the app, 0 does not', async () => {
    for (const maxLocalPasses of [undefined, 0]) {
      const locks = (await app(maxLocalPasses === undefined ? {} : { maxLocalPasses })).get(
        LockService,
      );
      const key = `passes:${maxLocalPasses}`;
      const holder = await locks.acquire(key);
      const attempts = await commandCalls(raw, 'evalsha');
      const waiting = locks.acquire(key, { waitTimeout: 10_000 });
      // The waiter had its busy answer (and waits for the holder) before it is released: the
      // answer went out before INFO counted the attempt, and is read before the PING's reply.
      await waitFor(async () => (await commandCalls(raw, 'evalsha')) > attempts, {
        interval: 5,
        message: "the waiter's attempt",
      });
      await raw.ping();
      await holder.release();
      const next = await waiting;
      // A pass keeps the lock in Redis as it stands: the next fencing token, right after.
      expect(next.fencingToken === holder.fencingToken + 1n).toBe(maxLocalPasses === undefined);
      await next.release();
    }
  });

  it('fair: true queues waiters in Redis; fairQueueTimeout and pubSub reach the client', async () => {
    const locks = (await app({ fair: true, fairQueueTimeout: 900, pubSub: false })).get(
      LockService,
    );
    const holder = await locks.acquire('fair:1');
    const waiting = locks.acquire('fair:1', { waitTimeout: 10_000 });
    await waitFor(async () => (await raw.zcard('lock:{fair:1}:queue')) === 1, {
      message: 'the waiter to queue in Redis',
    });
    // The spot's deadline is fairQueueTimeout ahead of Redis' clock.
    const [waiter] = await raw.zrange('lock:{fair:1}:timeouts', '0', '0');
    const deadline = await raw.zscore('lock:{fair:1}:timeouts', waiter);
    const [seconds, micros] = await raw.time();
    const ahead = Number(deadline) - (Number(seconds) * 1000 + Number(micros) / 1000);
    expect(ahead).toBeGreaterThan(0);
    expect(ahead).toBeLessThanOrEqual(900);
    // pubSub: false opens no subscriber.
    const [, subscribers] = (await raw.call('PUBSUB', 'NUMSUB', 'lock:{fair:1}:released')) as [
      string,
      number,
    ];
    expect(subscribers).toBe(0);

    await holder.release();
    const next = await waiting;
    await next.release();
    // Its place went when it was handed the lock in Redis, or with the release of the lock that
    // was passed to it in the app.
    await expect(raw.zcard('lock:{fair:1}:queue')).resolves.toBe(0);
  });
});
