/* The options of a RedisLockClient (the core's constructor). */
import type { RedisClient } from './redis/redis-connection.js';
import type { RedlockOptions } from './redis/redlock.store.js';
import type { InMemoryLockStore } from './memory/in-memory-lock.store.js';
import type { RetryStrategy } from '../interfaces/retry-strategy.interface.js';
import type { LockObserver } from './lock-observer.js';

/**
 * Where the core reports what it cannot throw (a lock lost in the background). Nest's `Logger`
 * fits; outside Nest, any object with `warn`.
 *
 * @example
 * const locks = new RedisLockClient({ redis, logger: { warn: (message) => pino.warn(message) } });
 */
export interface LockLogger {
  warn(message: string): void;
}

/**
 * Replicas that must acknowledge a grant before `acquire` returns it (Redis `WAIT`).
 *
 * @example
 * const waitForReplicas: ReplicaWait = { replicas: 1, timeout: 50 };
 */
export interface ReplicaWait {
  /** How many replicas must have the lock key. */
  replicas: number;
  /** How long to wait for them, in ms; the connection waits with it, so keep it short. */
  timeout: number;
}

/**
 * Options of `RedisLockClient`, the Nest-free core. `RedisLockModuleOptions` takes the same
 * defaults (all but `redis`, `redlock` and `logger`, which it has its own way), so each is
 * documented here only; `RedisLockModule` builds a client from them. Use it directly outside Nest.
 *
 * @example
 * const client = new RedisLockClient({ redis: new Redis(), keyPrefix: 'app:lock:' });
 */
export interface RedisLockClientOptions {
  /** A connected (or connecting) ioredis client. The lock client never closes it. */
  redis?: RedisClient;
  /**
   * Instead of `redis`: lock on a majority of independent masters (Redlock). Fair mode, pub/sub
   * wake-ups and `waitForReplicas` are not available there (waiters poll with `retry`).
   */
  redlock?: RedlockOptions;
  /**
   * Instead of `redis` or `redlock`: locks in this process's memory, for unit tests (clients given
   * the same store share its locks). Same semantics as one Redis; `waitForReplicas` does not apply.
   */
  memory?: InMemoryLockStore;
  /** Prepended to every lock key in Redis. Default `'lock:'`. */
  keyPrefix?: string;
  /** Default lease in ms, at most 2^31 - 1 (about 24.8 days). Default 30000. */
  ttl?: number;
  /**
   * Default wait for a busy lock in ms, any length; `Infinity` waits until the lock is granted or
   * the call's `signal` aborts. Default 0: one attempt.
   */
  waitTimeout?: number;
  /**
   * How waiters pause between attempts while pub/sub wake-ups are off or unavailable. Default
   * `exponentialBackoff({ base: 25, cap: 500 })` (full jitter, 25 ms to 500 ms).
   */
  retry?: RetryStrategy;
  /** Default of `LockOptions.fair`: grant every busy lock in arrival order. Default false. */
  fair?: boolean;
  /**
   * Wake waiters through Redis pub/sub when a lock is released (one extra connection per client,
   * opened on the first wait). Default true; false makes waiters poll with `retry`, e.g. behind a
   * proxy without pub/sub.
   */
  pubSub?: boolean;
  /**
   * A waiter queued in Redis (every fair waiter; the first waiter of each process otherwise) that
   * stops refreshing its place (it died) loses it after this many ms, so the ones behind it move
   * on; a lock handed to it meanwhile frees after as long. At most 2^31 - 1. Default 5000.
   */
  fairQueueTimeout?: number;
  /**
   * After each grant, wait until this many replicas acknowledged it (Redis `WAIT` on the same
   * connection); fewer within the timeout releases the lock and fails the acquire with
   * `LockUnavailableError` (HTTP 503). For Sentinel or replicated setups: it narrows, but does not
   * close, the window in which a failover loses a fresh lock (replication stays asynchronous;
   * `WAIT` does not make it strongly consistent). See the README. Not with Redlock or a Cluster.
   */
  waitForReplicas?: ReplicaWait;
  /**
   * Default mode: at most how many times in a row a released lock may be passed straight to
   * another caller of this process waiting for the same keys (no Redis command, no other process
   * woken) before it goes back to Redis, where the other processes' waiters are in line. More
   * serves more grants per second under contention; fewer shortens the other processes' wait for
   * their turn; 0 turns passing off. An integer >= 0 (or `Infinity`); it is an upper bound, and
   * the client also sends a lock back to Redis sooner on its own (after 15 passes at most, which
   * its fencing tokens need). Default 5. (Fair mode passes only to the waiter next in line in
   * Redis, within the same bound.)
   */
  maxLocalPasses?: number;
  /** Receives warnings (lost locks, failed releases). Default: `process.emitWarning`. */
  logger?: LockLogger;
  /** Told of every acquisition and hold (telemetry). Default: none, which costs nothing. */
  observer?: LockObserver;
}
