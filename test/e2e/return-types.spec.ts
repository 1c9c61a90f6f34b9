/**
 * `@Lock` on a provider method whose return type is unknown (a build without decorator metadata:
 * esbuild, SWC, tsx) that returns an Observable: the lock is never held for a stream nobody runs.
 */
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Redis } from 'ioredis';
import { isObservable, Subject, type Observable } from 'rxjs';
import { Lock, LockService, RedisLockClient, RedisLockModule } from '../../lib/index.js';
import { SUBSCRIBE_GRACE } from '../../lib/redis-lock.constants.js';
import { nowMs } from '../integration/helpers.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';

/** The stream each call of `Feeds.feed` returns, by id; the test drives it. */
const streams = new Map<string, Subject<number>>();

@Injectable()
class Feeds {
  /** Declared below without metadata. */
  declare feed: (id: string) => Promise<Observable<number>>;
}

// As esbuild, SWC or tsx build it: no `design:returntype`, not async. The method is defined and
// @Lock applied by hand, so what ts-jest emits for this file cannot hide the case.
const descriptor: PropertyDescriptor = {
  value: function feed(id: string) {
    const stream = new Subject<number>();
    streams.set(id, stream);
    return stream.asObservable();
  },
  writable: true,
  configurable: true,
};
Lock('feed:{{id}}')(Feeds.prototype, 'feed', descriptor);
Object.defineProperty(Feeds.prototype, 'feed', descriptor);

let redis: RedisServer;
let raw: Redis;
let app: INestApplicationContext;
let other: RedisLockClient;

beforeAll(async () => {
  redis = await startRedis();
  raw = redis.client();
  @Module({ imports: [RedisLockModule.forRoot({ redis: redis.url })], providers: [Feeds] })
  class FeedsModule {}
  app = await NestFactory.createApplicationContext(FeedsModule, { logger: false });
  other = new RedisLockClient({ redis: raw, logger: { warn: () => undefined } });
});

afterAll(async () => {
  await other?.close();
  await app?.close();
  await stopAllRedis();
});

describe('@Lock on a method of unknown return type that returns an Observable', () => {
  it(`frees the lock within SUBSCRIBE_GRACE (${SUBSCRIBE_GRACE} ms) + 150 ms when nobody subscribes; subscribed, holds it until the stream completes`, async () => {
    expect(Reflect.hasMetadata('design:returntype', Feeds.prototype, 'feed')).toBe(false);
    const feeds = app.get(Feeds);
    const locks = app.get(LockService);

    // Nobody subscribes: the lock goes, and another client can take it.
    const called = nowMs();
    const unwatched = await feeds.feed('1');
    expect(isObservable(unwatched)).toBe(true);
    await waitFor(async () => !(await locks.isLocked('feed:1')), {
      interval: 5,
      timeout: SUBSCRIBE_GRACE + 150,
      message: 'the lock of the unwatched stream to be released',
    });
    expect(nowMs() - called).toBeLessThan(SUBSCRIBE_GRACE + 150);
    const taken = await other.tryAcquire('feed:1');
    expect(taken).not.toBeNull();
    await taken!.release();

    // Subscribed at once: held under the call's own lock, past the grace, until completion.
    const subscribedAt = nowMs();
    const watched = await feeds.feed('2');
    const values: number[] = [];
    let completed = false;
    watched.subscribe({ next: (v) => values.push(v), complete: () => (completed = true) });
    streams.get('2')!.next(1);
    await waitFor(() => nowMs() - subscribedAt > SUBSCRIBE_GRACE + 50, {
      message: 'the grace to have passed',
    });
    await expect(locks.isLocked('feed:2')).resolves.toBe(true);
    await expect(other.tryAcquire('feed:2')).resolves.toBeNull();
    streams.get('2')!.next(2);
    streams.get('2')!.complete();
    await waitFor(async () => !(await locks.isLocked('feed:2')), {
      message: 'the lock to be released once the stream completed',
    });
    expect(values).toEqual([1, 2]);
    expect(completed).toBe(true);
  });

  it('takes the lock again for a subscription that comes after the grace, until it completes', async () => {
    const feeds = app.get(Feeds);
    const locks = app.get(LockService);
    const late = await feeds.feed('3');
    await waitFor(async () => !(await locks.isLocked('feed:3')), {
      timeout: SUBSCRIBE_GRACE + 150,
      message: 'the lock of the unwatched stream to be released',
    });

    const values: number[] = [];
    late.subscribe((v) => values.push(v));
    await waitFor(() => locks.isLocked('feed:3'), { message: 'the late subscription to lock' });
    await expect(other.tryAcquire('feed:3')).resolves.toBeNull();
    streams.get('3')!.next(7);
    streams.get('3')!.complete();
    await waitFor(async () => !(await locks.isLocked('feed:3')), {
      message: 'the lock to be released once the stream completed',
    });
    expect(values).toEqual([7]);
  });
});
