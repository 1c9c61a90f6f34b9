/**
 * Scenario 1, uncontended: `concurrency` callers, each on its own key, loop acquire + release
 * as fast as one connection allows. Measures the cost of the lock itself, not of waiting.
 */
import { randomBytes } from 'node:crypto';
import { Redlock } from '@sesamecare-oss/redlock';
import type { Redis, RedisOptions } from 'ioredis';
import { Mutex, Semaphore } from 'redis-semaphore';
import { RedisLockClient } from '../dist/core/redis-lock.client.js';
import { RedisConnection } from '../dist/core/redis/redis-connection.js';
import { readCommandStats, resetCommandStats, SentCommands } from './redis-stats.js';
import { now, percentile, sortedCopy } from './stats.js';

/** Long enough never to expire during a pair; autoRenew is off, so no renewal traffic. */
const TTL = 10_000;
const WARM_UP_MS = 500;
/** Length of one measured slice; the scenarios take turns slice by slice. */
const SLICE_MS = 500;

/** Compare-and-delete, the standard safe release, written out here for the raw baseline. */
const RAW_RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0`;

/** One acquire + release on the key of caller `i`, and the commands its client sends. */
export interface Pair {
  run: (i: number) => Promise<void>;
  sent: SentCommands;
}

export interface PairResult {
  pairs: number;
  perSecond: number;
  p50: number;
  p99: number;
  /** Commands the client sent (its round trips) during the measured window. */
  sent: Record<string, number>;
  /** Server-side calls per command, including those a Lua script made. */
  calls: Record<string, number>;
}

/**
 * Acquire + release through `RedisLockClient` (`tryAcquire`, autoRenew off), on the connection
 * `RedisConnection` makes from `connection`, as the module does (with its defaults); `close` closes it.
 */
export function libraryPair(connection: RedisOptions): Pair & { close: () => Promise<void> } {
  const own = RedisConnection.from(connection, { warn: () => undefined });
  const locks = new RedisLockClient({ redis: own.client, keyPrefix: 'bench:lib:' });
  const sent = new SentCommands(own.client as Redis);
  const run = async (i: number) => {
    const lock = await locks.tryAcquire(`u${i}`, { ttl: TTL, autoRenew: false });
    if (!lock) throw new Error(`bench:lib:u${i} was busy: another run shares this Redis?`);
    await lock.release();
  };
  return { run, sent, close: () => locks.close().then(() => own.close()) };
}

/** The same protocol by hand: `SET NX PX` with a random token, then EVALSHA compare-and-delete. */
export async function rawPair(redis: Redis): Promise<Pair> {
  const sha = (await redis.script('LOAD', RAW_RELEASE)) as string;
  const sent = new SentCommands(redis);
  const run = async (i: number) => {
    const key = `bench:raw:u${i}`;
    const token = randomBytes(16).toString('hex');
    if ((await redis.set(key, token, 'PX', TTL, 'NX')) !== 'OK') {
      throw new Error(`${key} was busy: another run shares this Redis?`);
    }
    if ((await redis.evalsha(sha, 1, key, token)) !== 1) throw new Error(`${key} was not released`);
  };
  return { run, sent };
}

/**
 * `@sesamecare-oss/redlock` on the one client: its acquire script (`EXISTS`, then `SET PX`) and
 * release script, both by EVALSHA. `retryCount: 0`, so a busy key fails at once as `tryAcquire`.
 */
export function redlockPair(redis: Redis): Pair {
  const sent = new SentCommands(redis);
  const redlock = new Redlock([redis], { retryCount: 0 });
  const run = async (i: number) => {
    const lock = await redlock.acquire([`bench:redlock:u${i}`], TTL);
    await lock.release();
  };
  return { run, sent };
}

/**
 * `redis-semaphore`'s `Mutex`, a new one per lock as its README does: `SET NX PX`, then an
 * EVALSHA compare-and-delete. No refresh timer, and one attempt only, as the other rows.
 */
export function semaphorePair(redis: Redis): Pair {
  const sent = new SentCommands(redis);
  const run = async (i: number) => {
    const mutex = new Mutex(redis, `bench:sem:u${i}`, {
      lockTimeout: TTL,
      acquireTimeout: TTL,
      acquireAttemptsLimit: 1,
      refreshInterval: 0,
    });
    await mutex.acquire();
    await mutex.release();
  };
  return { run, sent };
}

/** N of the semaphore rows: each caller's key has room for this many holders. */
export const SEMAPHORE_PERMITS = 3;

/** A permit of a semaphore through `RedisLockClient` (`tryAcquirePermit`, autoRenew off). */
export function libraryPermitPair(redis: Redis): Pair {
  const sent = new SentCommands(redis);
  const locks = new RedisLockClient({ redis, keyPrefix: 'bench:libsem:' });
  const run = async (i: number) => {
    const permit = await locks.tryAcquirePermit(`u${i}`, {
      permits: SEMAPHORE_PERMITS,
      ttl: TTL,
      autoRenew: false,
    });
    if (!permit) throw new Error(`bench:libsem:u${i} was full: another run shares this Redis?`);
    await permit.release();
  };
  return { run, sent };
}

/** The same through redis-semaphore's `Semaphore` (one attempt, no refresh). */
export function semaphoreSemaphorePair(redis: Redis): Pair {
  const sent = new SentCommands(redis);
  const run = async (i: number) => {
    const semaphore = new Semaphore(redis, `bench:semsem:u${i}`, SEMAPHORE_PERMITS, {
      lockTimeout: TTL,
      acquireTimeout: TTL,
      acquireAttemptsLimit: 1,
      refreshInterval: 0,
    });
    await semaphore.acquire();
    await semaphore.release();
  };
  return { run, sent };
}

/**
 * Runs every pair in turn, in slices of about half a second, until each had `seconds` of measured
 * time, after a warm-up of each. Slice order generalises ABBA to N pairs: odd slices run the
 * previous order reversed, and every second slice rotates it by one (ABCD DCBA BCDA ADCB ...),
 * so no pair always runs first, last or after the same neighbour. Interleaving makes the
 * comparison fair on a shared machine, where background load drifts during a run.
 */
export async function comparePairs(
  pairs: Pair[],
  admin: Redis,
  concurrency: number,
  seconds: number,
): Promise<PairResult[]> {
  for (const pair of pairs) await loop(pair, concurrency, WARM_UP_MS, []);
  const slices = Math.max(1, Math.round((seconds * 1000) / SLICE_MS));
  const sliceMs = (seconds * 1000) / slices;
  const totals = pairs.map(() => ({
    latencies: [] as number[],
    elapsed: 0,
    sent: {} as Record<string, number>,
    calls: {} as Record<string, number>,
  }));
  for (let slice = 0; slice < slices; slice++) {
    const order = sliceOrder(pairs.length, slice);
    for (const i of order) {
      const total = totals[i];
      await resetCommandStats(admin);
      pairs[i].sent.reset();
      total.elapsed += await loop(pairs[i], concurrency, sliceMs, total.latencies);
      addInto(total.calls, await readCommandStats(admin));
      addInto(total.sent, pairs[i].sent.calls);
    }
  }
  return totals.map(({ latencies, elapsed, sent, calls }) => {
    const sorted = sortedCopy(latencies);
    return {
      pairs: latencies.length,
      perSecond: latencies.length / (elapsed / 1000),
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      sent,
      calls,
    };
  });
}

/** Pair indexes for one slice: rotated by one every two slices, reversed on odd slices. */
function sliceOrder(count: number, slice: number): number[] {
  const shift = Math.floor(slice / 2) % count;
  const order = Array.from({ length: count }, (_, i) => (i + shift) % count);
  return slice % 2 === 1 ? order.reverse() : order;
}

function addInto(total: Record<string, number>, more: Record<string, number>): void {
  for (const [name, n] of Object.entries(more)) total[name] = (total[name] ?? 0) + n;
}

/** Every caller starts pairs until `durationMs` has passed; resolves with the real elapsed ms. */
async function loop(
  pair: Pair,
  concurrency: number,
  durationMs: number,
  latencies: number[],
): Promise<number> {
  const started = now();
  const end = started + durationMs;
  const caller = async (i: number) => {
    while (now() < end) {
      const t0 = now();
      await pair.run(i);
      latencies.push(now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => caller(i)));
  return now() - started;
}
