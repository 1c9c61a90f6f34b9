import type { Redis } from 'ioredis';
import { RedisConnection } from '../../lib/core/redis/redis-connection.js';
import type { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import { CLIENT_ID_BYTES } from '../../lib/redis-lock.constants.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import {
  CommandLog,
  commandCalls,
  fairQueue,
  LockClients,
  monitorCaughtUp,
  uniqueKey,
} from './helpers.js';

/** Commands in a chunk written to Redis: each starts with a RESP array header (`*<n>`). */
const commandsIn = (chunk: unknown): number =>
  String((chunk as { chunk?: unknown }).chunk ?? chunk).match(/(^|\r\n)\*\d+\r\n/g)?.length ?? 0;

/** Records how many commands each write on the client's socket carried, in `sizes` (returned). */
function watchWrites(redis: Redis, sizes: number[] = []): number[] {
  const socket = redis.stream as unknown as {
    _write: (chunk: unknown, ...rest: unknown[]) => void;
    _writev: (chunks: unknown[], cb: unknown) => void;
  };
  const write = socket._write.bind(socket);
  const writev = socket._writev.bind(socket);
  socket._write = (chunk, ...rest) => {
    sizes.push(commandsIn(chunk));
    write(chunk, ...rest);
  };
  socket._writev = (chunks, cb) => {
    sizes.push(chunks.reduce<number>((sum, chunk) => sum + commandsIn(chunk), 0));
    writev(chunks, cb);
  };
  return sizes;
}

describe("Socket writes: the connections we make pipeline a tick's lock commands; yours is left as it is", () => {
  let server: RedisServer;
  const clients = new LockClients();
  const connections: RedisConnection[] = [];

  beforeAll(async () => {
    server = await startRedis();
  });
  afterEach(async () => {
    await clients.closeAll();
    await Promise.all(connections.splice(0).map((connection) => connection.close()));
  });
  afterAll(() => stopAllRedis());

  /** A connected client, on a server that has the acquire and release scripts loaded. */
  async function readyClient(): Promise<Redis> {
    const redis = server.client();
    const lock = await clients.create(redis).acquire(uniqueKey('load-scripts'));
    await lock.release();
    return redis;
  }

  /** A connection made as the module makes its own, ready, and the lock client on it. */
  async function ownConnection(): Promise<{ redis: Redis; locks: RedisLockClient }> {
    const connection = RedisConnection.from(
      { host: '127.0.0.1', port: server.port },
      { warn: () => undefined },
    );
    connections.push(connection);
    const redis = connection.client as Redis;
    const locks = clients.create(redis);
    await (await locks.acquire(uniqueKey('load-scripts'))).release();
    return { redis, locks };
  }

  it('a connection the module makes pipelines the lock commands of one tick into one write (enableAutoPipelining)', async () => {
    const { redis, locks } = await ownConnection();
    expect(redis.options.enableAutoPipelining).toBe(true);
    const keys = Array.from({ length: 40 }, (_, i) => uniqueKey(`batch${i}`));
    const writes = watchWrites(redis);

    const held = await Promise.all(keys.map((key) => locks.tryAcquire(key)));
    expect(held.every((lock) => lock?.isHeld())).toBe(true);
    expect(writes).toEqual([40]);

    writes.length = 0;
    await Promise.all(held.map((lock) => lock!.release()));
    expect(writes).toEqual([40]);
    const admin = server.client();
    const left = await Promise.all(keys.map((key) => admin.exists(`lock:{${key}}`)));
    expect(left.every((n) => n === 0)).toBe(true);
  });

  it('a client of your own is used as it is: its options are left alone and each lock command is its own write', async () => {
    const redis = await readyClient();
    const locks = clients.create(redis);
    const keys = Array.from({ length: 3 }, (_, i) => uniqueKey(`plain${i}`));
    const writes = watchWrites(redis);

    const held = await Promise.all(keys.map((key) => locks.tryAcquire(key)));
    expect(held.every((lock) => lock?.isHeld())).toBe(true);
    expect(redis.options.enableAutoPipelining).toBe(false);
    expect(writes).toEqual([1, 1, 1]);
    await Promise.all(held.map((lock) => lock!.release()));
  });

  /** Waits until the fair queue of `key` holds `length` waiters. */
  async function queued(key: string, length: number): Promise<void> {
    const admin = server.client();
    await waitFor(async () => (await fairQueue(admin, key)).length === length, {
      interval: 5,
      message: `${length} waiter(s) in the queue of ${key}`,
    });
  }

  it('fair mode: a waiter passed the lock in its process holds it before any write, and its place in the queue goes with its release', async () => {
    const redis = await readyClient();
    const locks = clients.create(redis, { fair: true });
    const key = uniqueKey('passed');
    const holder = await clients.create(server.client(), { fair: true }).acquire(key);
    // b stands right behind a, in the same process: a's release passes the lock to b there.
    const a = locks.acquire(key, { waitTimeout: 10_000 });
    await queued(key, 1);
    const b = locks.acquire(key, { waitTimeout: 10_000 });
    await queued(key, 2);
    await holder.release();
    const lockA = await a;
    const log = await CommandLog.start(server.client());
    const writes = watchWrites(redis);

    let writesWhenGranted: number[] | undefined;
    const passed = b.then((lock) => {
      writesWhenGranted = [...writes];
      return lock;
    });
    await lockA.release();
    const lockB = await passed;
    expect(lockB.token).toBe(lockA.token); // passed in the process, not through Redis
    expect(writesWhenGranted).toEqual([]);
    // b's old place stays while b holds the lock; b's release drops it (no LEAVE_QUEUE) and
    // must not hand the lock to it.
    const admin = server.client();
    await expect(fairQueue(admin, key)).resolves.toEqual([lockB.queueToken]);
    await expect(lockB.release()).resolves.toBe(true);
    await expect(fairQueue(admin, key)).resolves.toEqual([]);
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
    await monitorCaughtUp(admin, log);
    log.stop();
    expect(log.scriptsOf(lockB.queueToken!)).not.toContain('leaveQueue');
    expect(log.scriptsOf(lockB.token)).toContain('release');
  });

  it('fair mode: a waiter joining behind waiters of its own process sets itself up after the waiter a release there just passed the lock to', async () => {
    const redis = await readyClient();
    const locks = clients.create(redis, { fair: true });
    const key = uniqueKey('defers');
    const holder = await clients.create(server.client(), { fair: true }).acquire(key);
    const a = locks.acquire(key, { waitTimeout: 10_000 });
    await queued(key, 1);
    const b = locks.acquire(key, { waitTimeout: 10_000 });
    await queued(key, 2);
    await holder.release();
    const lockA = await a;
    const commands: string[] = [];
    const evalsha = redis.evalsha.bind(redis) as (...args: unknown[]) => Promise<unknown>;
    redis.evalsha = ((...args: unknown[]) => {
      commands.push(String(args[0]));
      return evalsha(...args);
    }) as typeof redis.evalsha;

    // a's release passes the lock to b; a asks again at once, behind b.
    let commandsWhenBGranted: string[] | undefined;
    const passed = b.then((lock) => {
      commandsWhenBGranted = [...commands];
      return lock;
    });
    await lockA.release();
    const again = locks.acquire(key, { waitTimeout: 10_000 });
    const lockB = await passed;
    expect(lockB.token).toBe(lockA.token);
    expect(commandsWhenBGranted).toEqual([]); // a's attempt waits for b to be under way
    await queued(key, 2); // b's old place, and a again behind it
    await lockB.release();
    await (await again).release();
  });

  it('fair mode: a waiter joining behind its own process that is aborted before it is set up sends nothing', async () => {
    const redis = await readyClient();
    // The first waiter refreshes its place in the queue every fairQueueTimeout / 3: far apart
    // here, so none of its refreshes can fall in the window watched below.
    const locks = clients.create(redis, { fair: true, fairQueueTimeout: 120_000 });
    const key = uniqueKey('aborted-early');
    const holder = await locks.acquire(key);
    const first = locks.acquire(key, { waitTimeout: 10_000 });
    await queued(key, 1);
    const sent: string[] = [];
    watchWrites(redis, sent as unknown as number[]);

    const abort = new AbortController();
    const second = locks.acquire(key, { waitTimeout: 10_000, signal: abort.signal });
    abort.abort();
    await expect(second).rejects.toMatchObject({ name: 'LockNotAcquiredError', aborted: true });
    expect(sent).toEqual([]);
    await expect(fairQueue(server.client(), key)).resolves.toHaveLength(1);
    await holder.release();
    await (await first).release();
  });

  it('fair mode: a waiter joining the queue behind one of its own process sends its attempt after the tick ends', async () => {
    const redis = await readyClient();
    const locks = clients.create(redis, { fair: true });
    const key = uniqueKey('joins');
    const holder = await locks.acquire(key);
    const admin = server.client();
    const attemptsBefore = await commandCalls(admin, 'evalsha');
    const first = locks.acquire(key, { waitTimeout: 10_000 });
    // Its two attempts (the second once subscribed) are in: from now on, it sleeps.
    await waitFor(async () => (await commandCalls(admin, 'evalsha')) >= attemptsBefore + 2, {
      interval: 5,
      message: 'the first waiter made its two attempts',
    });
    const events: (number | string)[] = [];
    watchWrites(redis, events as number[]);

    process.nextTick(() => events.push('tick ended'));
    const second = locks.acquire(key, { waitTimeout: 10_000 });
    await queued(key, 2);
    expect(events).toEqual(['tick ended', 1]);
    await holder.release();
    await (await first).release();
    await (await second).release();
  });

  it('fair mode: waiters of one process that ask in the same tick reach Redis in one write and stand together in the queue', async () => {
    const { redis } = await ownConnection();
    const locks = clients.create(redis, { fair: true });
    const other = clients.create(server.client(), { fair: true });
    const key = uniqueKey('together');
    const holder = await other.acquire(key);
    const events: (number | string)[] = [];
    watchWrites(redis, events as number[]);

    process.nextTick(() => events.push('tick ended'));
    // Three waiters of this client, and one of another client asking among them.
    const wait = { waitTimeout: 10_000 };
    const mine = [locks.acquire(key, wait)];
    const theirs = other.acquire(key, wait);
    mine.push(locks.acquire(key, wait), locks.acquire(key, wait));
    await queued(key, 4);
    // None left at once: all three in one write when the tick ended.
    expect(events.slice(0, 2)).toEqual(['tick ended', 3]);
    // A token starts with its client's id: this client's three places are next to each other.
    const owners = (await fairQueue(server.client(), key)).map((t) =>
      t.slice(0, 2 * CLIENT_ID_BYTES),
    );
    const theirPlace = owners.findIndex((c) => owners.indexOf(c) === owners.lastIndexOf(c));
    expect([0, 3]).toContain(theirPlace);

    await holder.release();
    await Promise.all([...mine, theirs].map(async (waiter) => (await waiter).release()));
  });

  it('works with a client of your own that batches itself (enableAutoPipelining)', async () => {
    const redis = server.client({ enableAutoPipelining: true });
    await redis.ping();
    const locks = clients.create(redis);
    const keys = Array.from({ length: 40 }, (_, i) => uniqueKey(`auto${i}`));

    const held = await Promise.all(keys.map((key) => locks.tryAcquire(key)));
    expect(held.every((lock) => lock?.isHeld())).toBe(true);
    const again = await Promise.all(keys.map((key) => locks.tryAcquire(key)));
    expect(again.every((lock) => lock === null)).toBe(true);
    await Promise.all(held.map((lock) => lock!.release()));
    const admin = server.client();
    const left = await Promise.all(keys.map((key) => admin.exists(`lock:{${key}}`)));
    expect(left.every((n) => n === 0)).toBe(true);
  });
});
