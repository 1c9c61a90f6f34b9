/**
 * Fair mode on both stores: the queue order, hand-overs and leaving the queue, with the waiters
 * in several lock clients of this process (each client stands for a process: its own client id,
 * channel and local queues). The cross-process fair specs (fair.spec.ts) are Redis-only.
 */
import { LockNotAcquiredError } from '../../lib/errors/lock.errors.js';
import type { LockHandle } from '../../lib/interfaces/lock-handle.interface.js';
import { waitFor } from '../support/wait-for.js';
import { rejectionOf, uniqueKey } from './helpers.js';
import { LOCK_BACKENDS, lockBackend } from './lock-backends.js';

describe.each(LOCK_BACKENDS)('fair mode on %s', (name) => {
  const backend = lockBackend(name);

  /** Resolves once `count` waiters stand in the key's queue. */
  const queued = (key: string, count: number) =>
    waitFor(async () => (await backend.keys.queue(key)).length === count, {
      interval: 5,
      message: `${count} waiter(s) in the queue of ${key}`,
    });

  it('grants in enqueue order across clients, handing the lock over with rising fencing tokens', async () => {
    const key = uniqueKey('fair-order');
    const holder = await backend.client().acquire(key, { ttl: 30_000 });
    const order: string[] = [];
    const grants: Promise<LockHandle>[] = [];
    for (const label of ['first', 'second', 'third']) {
      const waiter = backend.client({ fair: true });
      const granted = waiter.acquire(key, { waitTimeout: 10_000, ttl: 30_000 });
      grants.push(
        granted.then(async (lock) => {
          order.push(label);
          // Handed over by the release before it: the key holds this waiter's token.
          await expect(backend.keys.get(`lock:{${key}}`)).resolves.toBe(lock.token);
          return lock;
        }),
      );
      await queued(key, grants.length);
    }

    let previous: { readonly fencingToken: bigint } = holder;
    await holder.release();
    for (const granted of grants) {
      const lock = await granted;
      expect(lock.fencingToken).toBeGreaterThan(previous.fencingToken);
      previous = lock;
      await lock.release();
    }
    expect(order).toEqual(['first', 'second', 'third']);
    await expect(backend.keys.queue(key)).resolves.toEqual([]);
    await expect(backend.keys.exists(`lock:{${key}}`)).resolves.toBe(0);
  });

  it('a fair waiter that gives up leaves the queue at once, and the one behind it gets the lock', async () => {
    const key = uniqueKey('fair-leave');
    const holder = await backend.client().acquire(key, { ttl: 30_000 });
    const giving = backend.client({ fair: true }).acquire(key, { waitTimeout: 300 });
    await queued(key, 1);
    const behind = backend.client({ fair: true }).acquire(key, { waitTimeout: 10_000 });
    await queued(key, 2);

    const { error } = await rejectionOf(giving);
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    await expect(backend.keys.queue(key)).resolves.toHaveLength(1);
    await holder.release();
    const lock = await behind;
    expect(lock.isHeld()).toBe(true);
    await expect(backend.keys.get(`lock:{${key}}`)).resolves.toBe(lock.token);
  });

  it('a single fair try takes no place and does not barge past a queued waiter', async () => {
    const key = uniqueKey('fair-try');
    const holder = await backend.client().acquire(key, { ttl: 30_000 });
    const waiting = backend.client({ fair: true }).acquire(key, { waitTimeout: 10_000 });
    await queued(key, 1);
    const other = backend.client({ fair: true });
    await expect(other.tryAcquire(key)).resolves.toBeNull();
    await expect(backend.keys.queue(key)).resolves.toHaveLength(1);
    await holder.release();
    await expect(waiting).resolves.toMatchObject({ key });
  });
});
