/* Read-write locks (`mode`) on a real Redis: who may enter, fencing, reentrancy, keys, refusals. */
import type { Redis } from 'ioredis';
import { InMemoryLockStore } from '../../lib/core/memory/in-memory-lock.store.js';
import { InvalidLockKeyError, LockNotAcquiredError } from '../../lib/errors/lock.errors.js';
import { LockModeError } from '../../lib/errors/lock-mode.error.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { commandCalls, LockClients, rejectionOf, uniqueKey } from './helpers.js';

describe('Read-write locks (mode) on one Redis', () => {
  const clients = new LockClients();
  let server: RedisServer;
  let admin: Redis;
  const client = (options: { fairQueueTimeout?: number } = {}) =>
    clients.create(server.client(), options);

  beforeAll(async () => {
    server = await startRedis();
    admin = server.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  it('readers overlap: several clients hold the read lock at once', async () => {
    const key = uniqueKey('rw-overlap');
    const a = await client().acquire(key, { mode: 'read' });
    const b = await client().tryAcquire(key, { mode: 'read' });
    const c = await client().tryAcquire(key, { mode: 'read' });
    expect([a.isHeld(), b?.isHeld(), c?.isHeld()]).toEqual([true, true, true]);
    expect(await admin.zcard(`lock:{${key}}`)).toBe(3);
  });

  it('a writer excludes readers and other writers, and a reader excludes writers', async () => {
    const key = uniqueKey('rw-exclusive');
    const writer = await client().acquire(key, { mode: 'write' });
    await expect(client().tryAcquire(key, { mode: 'read' })).resolves.toBeNull();
    await expect(client().tryAcquire(key, { mode: 'write' })).resolves.toBeNull();
    await writer.release();
    const reader = await client().acquire(key, { mode: 'read' });
    await expect(client().tryAcquire(key, { mode: 'write' })).resolves.toBeNull();
    await reader.release();
    await expect(client().tryAcquire(key, { mode: 'write' })).resolves.not.toBeNull();
  });
  it('a waiting writer keeps new readers out, and gets the lock when the readers leave', async () => {
    const key = uniqueKey('rw-preference');
    const readers = [await client().acquire(key, { mode: 'read' })];
    readers.push(await client().acquire(key, { mode: 'read' }));
    const writing = client().acquire(key, { mode: 'write', waitTimeout: 20_000 });
    await waitFor(async () => (await admin.zcard(`lock:{${key}}:rw-writers`)) === 1, {
      message: 'the writer to wait',
    });
    // Readers still hold, yet no new reader enters: the writer is next.
    await expect(client().tryAcquire(key, { mode: 'read' })).resolves.toBeNull();
    for (const reader of readers) await reader.release();
    const writer = await writing;
    expect(writer.isHeld()).toBe(true);
    expect(await admin.zcard(`lock:{${key}}:rw-writers`)).toBe(0);
    // A waiting reader is woken by the writer's release: once refused twice (its first attempt,
    // then the one after it subscribed), only a wake-up brings it the lock before its wait ends
    // (its place is refreshed every 30 s, the writer's lease is 30 s).
    const reader = client({ fairQueueTimeout: 90_000 });
    const before = await commandCalls(admin, 'evalsha');
    const reading = reader.acquire(key, { mode: 'read', waitTimeout: 20_000, fair: true });
    await waitFor(async () => (await commandCalls(admin, 'evalsha')) >= before + 2);
    let woken = false;
    void reading.then(() => (woken = true)).catch(() => undefined);
    await writer.release();
    // Well before its wait ends, where a last attempt would find the lock free anyway.
    await waitFor(() => woken, { timeout: 10_000, message: 'the waiting reader to be woken' });
    await expect(reading).resolves.toMatchObject({ key });
  });

  it('a writer that gives up its wait lets readers in at once', async () => {
    const key = uniqueKey('rw-gives-up');
    const reader = await client().acquire(key, { mode: 'read' });
    const { error } = await rejectionOf(client().acquire(key, { mode: 'write', waitTimeout: 200 }));
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(await admin.exists(`lock:{${key}}:rw-writers`)).toBe(0);
    await expect(client().tryAcquire(key, { mode: 'read' })).resolves.not.toBeNull();
    await reader.release();
  });

  it('writers get fencing tokens rising across writers; readers the token of the last write', async () => {
    const key = uniqueKey('rw-fence');
    const w1 = await client().acquire(key, { mode: 'write' });
    await w1.release();
    const r1 = await client().acquire(key, { mode: 'read' });
    const r2 = await client().acquire(key, { mode: 'read' });
    expect(r1.fencingToken).toBe(w1.fencingToken);
    expect(r2.fencingToken).toBe(w1.fencingToken);
    await Promise.all([r1.release(), r2.release()]);
    const w2 = await client().acquire(key, { mode: 'write' });
    expect(w2.fencingToken).toBeGreaterThan(w1.fencingToken);
    await w2.release();
    const r3 = await client().acquire(key, { mode: 'read' });
    expect(r3.fencingToken).toBe(w2.fencingToken);
  });

  it('a read inside a write on the same key joins it; a write inside a read is refused', async () => {
    const locks = client();
    const key = uniqueKey('rw-reentrant');
    const inner = await locks.run(
      key,
      (outer) => locks.run(key, (read) => read === outer, { mode: 'read' }),
      { mode: 'write' },
    );
    expect(inner).toBe(true);
    const { error } = await rejectionOf(
      locks.run(key, () => locks.run(key, () => 'upgraded', { mode: 'write' }), { mode: 'read' }),
    );
    expect(error).toBeInstanceOf(LockModeError);
    expect((error as Error).message).toMatch(/cannot be upgraded/);
    expect(await admin.exists(`lock:{${key}}`)).toBe(0);
  });

  it('one key cannot be used both as a plain lock and as a read-write lock', async () => {
    const key = uniqueKey('rw-mixed');
    const plain = await client().acquire(key);
    const asRw = await rejectionOf(client().acquire(key, { mode: 'read', waitTimeout: 5_000 }));
    expect((asRw.error as Error).message).toMatch(/is a plain lock .*cannot be taken with mode/);
    await plain.release();
    const rw = await client().acquire(key, { mode: 'write' });
    for (const fair of [false, true]) {
      const asPlain = await rejectionOf(client().acquire(key, { waitTimeout: 5_000, fair }));
      expect((asPlain.error as Error).message).toMatch(/is a read-write lock .*without mode/);
    }
    await rw.release();
  });

  it('fair: true grants in arrival order, readers that arrive together entering together', async () => {
    const key = uniqueKey('rw-fair');
    const order: string[] = [];
    const holder = await client().acquire(key, { mode: 'write' });
    // One after another, each once the one before stands in the queue: arrival order is known.
    const take = async (name: string, mode: 'read' | 'write', queued: number) => {
      const waiting = client().acquire(key, { mode, fair: true, waitTimeout: 20_000 });
      await waitFor(async () => (await admin.zcard(`lock:{${key}}:rw-queue`)) === queued);
      const granted = waiting.then((handle) => {
        order.push(name);
        return handle;
      });
      return { granted };
    };
    const r1 = (await take('r1', 'read', 1)).granted;
    const w1 = (await take('w1', 'write', 2)).granted;
    const r2 = (await take('r2', 'read', 3)).granted;
    const r3 = (await take('r3', 'read', 4)).granted;
    await holder.release();
    (await r1).release();
    const writer = await w1;
    expect(order).toEqual(['r1', 'w1']);
    await writer.release();
    await Promise.all([r2, r3]);
    expect(order.slice(2).sort()).toEqual(['r2', 'r3']);
  });

  it('the watchdog renews a read lock past its ttl, keeping writers out', async () => {
    const key = uniqueKey('rw-watchdog');
    const locks = client();
    await locks.run(
      key,
      async () => {
        const score = async () =>
          Number((await admin.zrange(`lock:{${key}}`, '0', '0', 'WITHSCORES'))[1]);
        const first = await score();
        await waitFor(async () => (await score()) > first, { message: 'a renewal' });
        await expect(client().tryAcquire(key, { mode: 'write' })).resolves.toBeNull();
      },
      { mode: 'read', ttl: 600 },
    );
  });

  it('leaves no key without a TTL, and no holders once everything is released', async () => {
    const key = uniqueKey('rw-ttl');
    const reader = await client().acquire(key, { mode: 'read' });
    const writing = client().acquire(key, { mode: 'write', fair: true, waitTimeout: 20_000 });
    await waitFor(async () => (await admin.exists(`lock:{${key}}:rw-queue`)) === 1);
    const names = await admin.keys(`lock:{${key}}*`);
    expect(names.length).toBeGreaterThanOrEqual(5);
    for (const name of names) expect(await admin.pttl(name)).toBeGreaterThan(0);
    await reader.release();
    await (await writing).release();
    expect(await admin.exists(`lock:{${key}}`)).toBe(0);
    for (const name of await admin.keys(`lock:{${key}}*`)) {
      expect(await admin.pttl(name)).toBeGreaterThan(0);
    }
  });

  it('refuses bad input with errors naming it', async () => {
    const locks = client();
    await expect(locks.acquire(['a', 'b'], { mode: 'read' })).rejects.toThrow(InvalidLockKeyError);
    await expect(locks.acquire('a', { mode: 'reader' as never })).rejects.toThrow(
      /mode.*'read' or 'write'/,
    );
    await expect(locks.acquire('', { mode: 'write' })).rejects.toThrow(InvalidLockKeyError);
  });

  it('is refused with a clear error on a backend without read-write locks', async () => {
    const locks = clients.createOn({ memory: new InMemoryLockStore() });
    const { error } = await rejectionOf(locks.acquire('doc', { mode: 'read' }));
    expect(error).toBeInstanceOf(LockModeError);
    expect((error as Error).message).toMatch(/in-memory store is not supported/);
  });
});
