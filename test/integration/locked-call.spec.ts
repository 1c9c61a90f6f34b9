import type { Redis } from 'ioredis';
import { defer, firstValueFrom, from, Observable, of, Subject, timeout, toArray } from 'rxjs';
import { callLocked, observeLocked } from '../../lib/locked-call.js';
import type { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import { LockNotAcquiredError } from '../../lib/errors/lock.errors.js';
import { SUBSCRIBE_GRACE } from '../../lib/redis-lock.constants.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { gate, LockClients, nowMs, rejectionOf, uniqueKey } from './helpers.js';

describe('callLocked and observeLocked', () => {
  let redis: RedisServer;
  let admin: Redis;
  let locks: RedisLockClient;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  beforeEach(() => {
    locks = clients.create(redis.client());
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  const isHeld = async (key: string) => (await admin.exists(`lock:{${key}}`)) === 1;
  const released = (key: string) =>
    waitFor(async () => !(await isHeld(key)), { message: `lock:${key} to be released` });

  describe('callLocked', () => {
    it('holds the lock until the returned promise settles, then releases it', async () => {
      const key = uniqueKey('promise');
      const work = gate<string>();
      const call = callLocked(locks, key, {}, () => work.promise);
      await waitFor(() => isHeld(key), { message: 'the lock to be taken' });
      work.open('paid');
      await expect(call).resolves.toBe('paid');
      await expect(isHeld(key)).resolves.toBe(false);
    });

    it('releases and rethrows when the call throws or rejects', async () => {
      const key = uniqueKey('throws');
      const boom = new Error('boom');
      const thrown = await rejectionOf(
        callLocked(locks, key, {}, () => {
          throw boom;
        }),
      );
      expect(thrown.error).toBe(boom);
      await expect(isHeld(key)).resolves.toBe(false);
      const rejected = await rejectionOf(callLocked(locks, key, {}, () => Promise.reject(boom)));
      expect(rejected.error).toBe(boom);
      await expect(isHeld(key)).resolves.toBe(false);
    });

    it('holds the lock while the returned Observable runs and releases it on complete', async () => {
      const key = uniqueKey('observable');
      const source = new Subject<number>();
      const result = (await callLocked(locks, key, {}, () => source)) as Observable<number>;
      expect(result).toBeInstanceOf(Observable);
      await expect(isHeld(key)).resolves.toBe(true);

      const values: number[] = [];
      result.subscribe((value) => values.push(value));
      source.next(1);
      source.next(2);
      await expect(isHeld(key)).resolves.toBe(true);
      source.complete();
      await released(key);
      expect(values).toEqual([1, 2]);
    });

    it('releases the lock when the subscriber unsubscribes from an endless Observable', async () => {
      const key = uniqueKey('unsubscribe');
      const source = new Subject<number>();
      const result = (await callLocked(locks, key, {}, () => source)) as Observable<number>;
      const subscription = result.subscribe();
      source.next(1);
      await expect(isHeld(key)).resolves.toBe(true);
      subscription.unsubscribe();
      await released(key);
      expect(source.observed).toBe(false);
    });

    it('releases the lock when the Observable errors', async () => {
      const key = uniqueKey('obs-error');
      const source = new Subject<number>();
      const result = (await callLocked(locks, key, {}, () => source)) as Observable<number>;
      const failed = firstValueFrom(result).catch((err: Error) => err.message);
      source.error(new Error('stream failed'));
      await expect(failed).resolves.toBe('stream failed');
      await released(key);
    });

    it(`releases the lock within SUBSCRIBE_GRACE (${SUBSCRIBE_GRACE} ms) + 150 ms when nobody subscribes to the returned Observable`, async () => {
      const key = uniqueKey('unsubscribed');
      const called = nowMs();
      const result = await callLocked(locks, key, {}, () => new Subject<number>());
      expect(result).toBeInstanceOf(Observable);
      await waitFor(async () => !(await isHeld(key)), {
        interval: 5,
        timeout: SUBSCRIBE_GRACE + 150,
        message: `lock:${key} to be released`,
      });
      expect(nowMs() - called).toBeLessThan(SUBSCRIBE_GRACE + 150);
    });

    it('gives a second subscription to the returned Observable a lock of its own', async () => {
      const key = uniqueKey('two-subscribers');
      const source = new Subject<number>();
      const result = (await callLocked(locks, key, {}, () => source)) as Observable<number>;
      const first = result.subscribe();
      // The first subscription holds the call's lock: the second cannot take it (waitTimeout 0).
      await expect(firstValueFrom(result.pipe(timeout({ first: 2_000 })))).rejects.toBeInstanceOf(
        LockNotAcquiredError,
      );
      await expect(isHeld(key)).resolves.toBe(true);
      first.unsubscribe();
      await released(key);
      // Free again: the next subscription takes it, and holds it until the stream completes.
      const values: number[] = [];
      result.subscribe((value) => values.push(value));
      await waitFor(() => isHeld(key), { message: 'the new subscription to take the lock' });
      await waitFor(() => source.observed, { message: 'the source to be subscribed' });
      source.next(3);
      source.complete();
      await released(key);
      expect(values).toEqual([3]);
    });

    it('skips without running when the lock is busy and onSkip is given', async () => {
      const key = uniqueKey('skip');
      await clients.create(redis.client()).acquire(key);
      const skipped: string[] = [];
      let ran = false;
      const result = await callLocked(locks, key, { onSkip: (k) => skipped.push(k) }, () => {
        ran = true;
      });
      expect(result).toBeUndefined();
      expect(ran).toBe(false);
      expect(skipped).toEqual([key]);
      // Without onSkip, a busy lock fails the call.
      await expect(callLocked(locks, key, {}, () => 1)).rejects.toBeInstanceOf(
        LockNotAcquiredError,
      );
    });

    it('lets a reentrant call made when the returned Observable is subscribed join the lock', async () => {
      const key = uniqueKey('obs-reentrant');
      const result = (await callLocked(locks, key, {}, () =>
        defer(() => from(locks.run(key, (lock) => lock.token))),
      )) as Observable<string>;
      await expect(firstValueFrom(result)).resolves.toMatch(/^[0-9a-f]{48}$/);
      await released(key);
    });
  });

  describe('observeLocked', () => {
    it('takes the lock on subscription, not before, and releases it on complete', async () => {
      const key = uniqueKey('observe');
      const source = new Subject<string>();
      let invoked = 0;
      const locked = observeLocked(locks, key, {}, () => (invoked++, source));
      await expect(isHeld(key)).resolves.toBe(false);
      expect(invoked).toBe(0);

      const values: string[] = [];
      let completed = false;
      locked.subscribe({
        next: (v) => values.push(v as string),
        complete: () => (completed = true),
      });
      await waitFor(() => invoked === 1, { message: 'the call to run under the lock' });
      await expect(isHeld(key)).resolves.toBe(true);
      source.next('a');
      source.complete();
      await released(key);
      expect(values).toEqual(['a']);
      expect(completed).toBe(true);
    });

    it('releases the lock on unsubscribe', async () => {
      const key = uniqueKey('observe-unsub');
      const source = new Subject<string>();
      const subscription = observeLocked(locks, key, {}, () => source).subscribe();
      await waitFor(() => source.observed, { message: 'the source to be subscribed' });
      await expect(isHeld(key)).resolves.toBe(true);
      subscription.unsubscribe();
      await released(key);
    });

    it('leaves no lock behind when unsubscribed while still waiting for it', async () => {
      const key = uniqueKey('observe-early');
      const holder = await clients.create(redis.client()).acquire(key, { ttl: 30_000 });
      let invoked = false;
      const subscription = observeLocked(locks, key, { waitTimeout: 10_000 }, () => {
        invoked = true;
        return of(1);
      }).subscribe();
      subscription.unsubscribe();
      await holder.release();
      // The waiter still gets the lock after the unsubscribe, then must hand it back.
      await released(key);
      const again = await locks.tryAcquire(key);
      expect(again).not.toBeNull();
      expect(invoked).toBe(false);
    });

    it('errors the stream and releases the lock when the call throws synchronously', async () => {
      const key = uniqueKey('observe-throws');
      const boom = new Error('boom');
      const locked = observeLocked(locks, key, {}, () => {
        throw boom;
      });
      await expect(firstValueFrom(locked)).rejects.toBe(boom);
      await released(key);
    });

    it('releases the lock when the stream errors', async () => {
      const key = uniqueKey('observe-error');
      const source = new Subject<number>();
      const failed = firstValueFrom(observeLocked(locks, key, {}, () => source)).catch(
        (err: Error) => err.message,
      );
      await waitFor(() => source.observed, { message: 'the source to be subscribed' });
      await expect(isHeld(key)).resolves.toBe(true);
      source.error(new Error('stream failed'));
      await expect(failed).resolves.toBe('stream failed');
      await released(key);
    });

    it('emits the value of a call that returns a promise or a plain value', async () => {
      const fromPromise = observeLocked(locks, uniqueKey('p'), {}, () => Promise.resolve(7));
      const fromValue = observeLocked(locks, uniqueKey('v'), {}, () => 8);
      await expect(firstValueFrom(fromPromise.pipe(toArray()))).resolves.toEqual([7]);
      await expect(firstValueFrom(fromValue.pipe(toArray()))).resolves.toEqual([8]);
    });

    it('completes without a value when the lock is busy and onSkip is given, and errors without', async () => {
      const key = uniqueKey('observe-skip');
      await clients.create(redis.client()).acquire(key);
      const skipped: string[] = [];
      const values = await firstValueFrom(
        observeLocked(locks, key, { onSkip: (k) => skipped.push(k) }, () => of(1)).pipe(toArray()),
      );
      expect(values).toEqual([]);
      expect(skipped).toEqual([key]);
      await expect(
        firstValueFrom(observeLocked(locks, key, {}, () => of(1))),
      ).rejects.toBeInstanceOf(LockNotAcquiredError);
    });

    it('lets a reentrant call made when the Observable is subscribed join the lock', async () => {
      const key = uniqueKey('observe-reentrant');
      const locked = observeLocked(locks, key, {}, () =>
        defer(() => from(locks.run(key, (lock) => lock.token))),
      );
      await expect(firstValueFrom(locked)).resolves.toMatch(/^[0-9a-f]{48}$/);
      await released(key);
    });
  });
});
