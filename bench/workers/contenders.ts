/**
 * The lock implementations the contended scenario compares, each behind one small interface so
 * the worker loop treats them alike. All of them share the process's one ioredis connection.
 */
import { ExecutionError, Redlock } from '@sesamecare-oss/redlock';
import type { Redis } from 'ioredis';
import { Mutex, Semaphore } from 'redis-semaphore';
import { RedisLockClient } from '../../dist/core/redis-lock.client.js';
import { RedisConnection } from '../../dist/core/redis/redis-connection.js';
import type { SentCommands } from '../redis-stats.js';
import { LockNotAcquiredError } from '../../dist/errors/lock.errors.js';
import type { LockOptions } from '../../dist/interfaces/lock-options.interface.js';
import { TokenRing, type RingPlace } from './token-ring.js';

/**
 * Which lock a contended round runs; also names its key, so no two rows share one.
 * `token-ring` is no lock but the floor of the fair row (see `token-ring.ts`).
 */
export type Impl =
  | 'library'
  | 'library-fair'
  | 'redlock'
  | 'redis-semaphore'
  | 'token-ring'
  | 'library-semaphore'
  | 'redis-semaphore-semaphore';

export const IMPLS: readonly Impl[] = [
  'library',
  'library-fair',
  'redlock',
  'redis-semaphore',
  'token-ring',
  'library-semaphore',
  'redis-semaphore-semaphore',
];

/** N of the semaphore rows (every other row is a lock: 1 holder at a time). */
export const CONTENDED_PERMITS = 3;

/** How many may hold the key of a row at once: its ideal is that many times a lock's. */
export const holdersOf = (impl: Impl): number =>
  impl === 'library-semaphore' || impl === 'redis-semaphore-semaphore' ? CONTENDED_PERMITS : 1;

/** What one round needs to know to wait for the lock. */
export interface RoundSettings {
  ttl: number;
  /** Length of the round, ms: how long a waiter may have to wait at most. */
  roundMs: number;
  /** Aborted when the round ends. */
  signal: AbortSignal;
}

/**
 * Waits for the lock on `key`. Resolves with its release, or `null` when the round ended first.
 * A lock may still be granted after the round ended, by an implementation that cannot be
 * stopped mid-wait; the caller checks `signal` and does not count it.
 */
export type Acquire = (
  key: string,
  round: RoundSettings,
) => Promise<(() => Promise<unknown>) | null>;

/** Far beyond any round: a waiter is only stopped by the end of the round. */
const WAIT_TIMEOUT = 600_000;

/** One {@link Acquire} per implementation; `close` ends what they keep open. */
export interface Contenders {
  acquire: Record<Impl, Acquire>;
  close: () => Promise<void>;
}

/** The contenders on `redis`; `place`: this process's place in the token ring. */
export async function contenders(
  redis: Redis,
  place: RingPlace,
  sent: SentCommands,
): Promise<Contenders> {
  // The library on a connection of its own making, as a module user gets it.
  const { host, port } = redis.options;
  const own = RedisConnection.from({ host, port }, { warn: () => undefined });
  const locks = new RedisLockClient({ redis: own.client, keyPrefix: 'bench:' });
  sent.watch(own.client as Redis);
  const redlock = new Redlock([redis]);
  const ring = await TokenRing.join(redis, place);

  const library =
    (extra: LockOptions): Acquire =>
    async (key, { ttl, signal }) => {
      try {
        const lock = await locks.acquire(key, { ttl, waitTimeout: WAIT_TIMEOUT, signal, ...extra });
        return () => lock.release();
      } catch (err) {
        if (err instanceof LockNotAcquiredError && signal.aborted) return null;
        throw err;
      }
    };

  // Redlock cannot be stopped mid-wait, and gives up after `retryCount` retries. A user who
  // wants to wait long raises the count; here it covers the whole round even if every delay is
  // the shortest one (retryDelay - retryJitter), so it never gives up before the round ends.
  const { retryDelay, retryJitter } = redlock.settings;
  const shortestDelay = Math.max(1, retryDelay - retryJitter);
  const redlockAcquire: Acquire = async (key, { ttl, roundMs, signal }) => {
    const retryCount = Math.ceil(roundMs / shortestDelay);
    try {
      const lock = await redlock.acquire([`bench:${key}`], ttl, { retryCount });
      return () => lock.release();
    } catch (err) {
      if (!(err instanceof ExecutionError)) throw err;
      if (signal.aborted) return null;
      throw new Error(`redlock gave up within the round despite retryCount ${retryCount}`, {
        cause: err,
      });
    }
  };

  // redis-semaphore 5.8 takes an AbortSignal: the delay between attempts ends on abort, a `SET`
  // in flight still completes (and may grant the lock after the round ended).
  const semaphoreAcquire: Acquire = async (key, { ttl, signal }) => {
    const mutex = new Mutex(redis, `bench:${key}`, {
      lockTimeout: ttl,
      acquireTimeout: WAIT_TIMEOUT,
      refreshInterval: 0,
    });
    try {
      await mutex.acquire(signal);
      return () => mutex.release();
    } catch (err) {
      // An abort rejects with the signal's reason; anything else is a real failure.
      if (signal.aborted && err === signal.reason) return null;
      throw err;
    }
  };

  const permitAcquire: Acquire = async (key, { ttl, signal }) => {
    try {
      const permit = await locks.acquirePermit(key, {
        permits: CONTENDED_PERMITS,
        ttl,
        waitTimeout: WAIT_TIMEOUT,
        signal,
      });
      return () => permit.release();
    } catch (err) {
      if (err instanceof LockNotAcquiredError && signal.aborted) return null;
      throw err;
    }
  };

  const semaphoreSemaphoreAcquire: Acquire = async (key, { ttl, signal }) => {
    const semaphore = new Semaphore(redis, `bench:${key}`, CONTENDED_PERMITS, {
      lockTimeout: ttl,
      acquireTimeout: WAIT_TIMEOUT,
      refreshInterval: 0,
    });
    try {
      await semaphore.acquire(signal);
      return () => semaphore.release();
    } catch (err) {
      if (signal.aborted && err === signal.reason) return null;
      throw err;
    }
  };

  return {
    acquire: {
      'library-semaphore': permitAcquire,
      'redis-semaphore-semaphore': semaphoreSemaphoreAcquire,
      library: library({}),
      'library-fair': library({ fair: true }),
      redlock: redlockAcquire,
      'redis-semaphore': semaphoreAcquire,
      'token-ring': (_key, round) => ring.acquire(round),
    },
    close: async () => {
      ring.close();
      await locks.close();
      await own.close();
    },
  };
}
