import { AsyncLocalStorage } from 'node:async_hooks';
import { LockNotAcquiredError, LockUnavailableError } from '../errors/lock.errors.js';
import type { LockOptions } from '../interfaces/lock-options.interface.js';
import {
  ATTEMPT_TIMEOUT,
  DEFAULT_FAIR_QUEUE_TIMEOUT,
  DEFAULT_KEY_PREFIX,
  DEFAULT_LOCAL_PASSES,
  MAX_LOCAL_PASSES,
} from '../redis-lock.constants.js';
import { invalidOptionMessage, releaseFailedWarning } from '../redis-lock.messages.js';
import { checkDrainTimeout, heldAfterDrain } from './lock-drain.js';
import { LockAcquirer, type AcquirerOwner } from './lock.acquirer.js';
import {
  resolveClientDefaults,
  resolveLockOptions,
  type ResolvedLockOptions,
} from './lock-options.resolver.js';
import type { LockStore } from './lock-store.interface.js';
import { lockTarget, type LockTarget } from './lock-target.js';
import { answerWithin } from './race-attempt.js';
import { isCluster, type RedisClient } from './redis-connection.js';
import type {
  LockLogger,
  RedisLockClientOptions,
  ReplicaWait,
} from './redis-lock-client.options.js';
import { RedisLockHandle } from './redis-lock.handle.js';
import { RedisStore } from './redis.store.js';
import { RedlockStore } from './redlock.store.js';
import { WakeUpHub } from './wake-up.hub.js';

/** Locks held by the current async call chain, by Redis lock key: what reentrant calls join. */
type HeldInContext = ReadonlyMap<string, RedisLockHandle>;

/** One key, or several to lock together (all or nothing). */
export type LockKeys = string | readonly string[];

/**
 * A lock entered through `enter()`: either taken now (`owned`) or joined from the caller.
 *
 * @example
 * const scope = await locks.enter('order:1');
 * try { await locks.runInScope(scope, () => pay('1')); } finally { await locks.exit(scope); }
 */
export interface LockScope {
  readonly handle: RedisLockHandle;
  /** False when the lock was joined from an enclosing call, which stays responsible for it. */
  readonly owned: boolean;
}

/**
 * The Nest-free core: takes, waits for, renews and releases locks on one Redis (also through
 * Sentinel), a Redis Cluster, or a Redlock quorum of masters. Scopes and reentrancy live here;
 * the acquiring and waiting in `LockAcquirer`, the Redis side in a `LockStore`. `LockService` is
 * a thin Nest wrapper around it; use it directly in scripts or other frameworks.
 *
 * @example
 * const locks = new RedisLockClient({ redis: new Redis('redis://localhost:6379') });
 * await locks.run('report:daily', async (lock) => buildReport({ signal: lock.signal }));
 * await locks.close();
 */
export class RedisLockClient implements AcquirerOwner {
  /** The Redis (or Cluster) the locks live on; undefined with Redlock. */
  readonly redis?: RedisClient;
  /** @internal where the locks live, for the handles. */
  readonly store: LockStore;
  readonly logger: LockLogger;
  private readonly keyPrefix: string;
  private readonly defaults: ResolvedLockOptions;
  private readonly acquirer: LockAcquirer;
  private readonly wakeUps?: WakeUpHub;
  private readonly held = new Set<RedisLockHandle>();
  /** Called whenever a held lock is let go: a drain waits on them. */
  private readonly settledListeners = new Set<() => void>();
  // One per client: two Nest apps in one process never join each other's locks.
  private readonly context = new AsyncLocalStorage<HeldInContext>();

  constructor(options: RedisLockClientOptions) {
    if ((options.redis === undefined) === (options.redlock === undefined)) {
      throw new TypeError(invalidOptionMessage('redis', options.redis, 'either redis or redlock'));
    }
    this.redis = options.redis;
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.logger = options.logger ?? { warn: (message) => process.emitWarning(message) };
    this.defaults = resolveClientDefaults(options);
    const fairQueueTimeout = options.fairQueueTimeout ?? DEFAULT_FAIR_QUEUE_TIMEOUT;
    if (!Number.isInteger(fairQueueTimeout) || fairQueueTimeout <= 0) {
      throw new RangeError(
        invalidOptionMessage('fairQueueTimeout', fairQueueTimeout, 'a positive integer of ms'),
      );
    }
    const maxLocalPasses = options.maxLocalPasses ?? DEFAULT_LOCAL_PASSES;
    if (
      !Number.isInteger(maxLocalPasses) ||
      maxLocalPasses < 0 ||
      maxLocalPasses > MAX_LOCAL_PASSES
    ) {
      throw new RangeError(
        invalidOptionMessage(
          'maxLocalPasses',
          maxLocalPasses,
          `an integer from 0 to ${MAX_LOCAL_PASSES}`,
        ),
      );
    }
    // A fair hand-over lasts one spot timeout unless the new holder extends it: a waiter that
    // crashed just before its turn blocks the others no longer than its place would have.
    let redisStore: RedisStore | undefined;
    let waitForReplicas: ReplicaWait | undefined;
    if (options.redlock) {
      this.store = new RedlockStore(options.redlock);
      if (options.waitForReplicas !== undefined) {
        throw new RangeError(
          invalidOptionMessage('waitForReplicas', options.waitForReplicas, 'no value with redlock'),
        );
      }
    } else {
      const redis = options.redis as RedisClient;
      this.store = redisStore = new RedisStore(redis, fairQueueTimeout);
      waitForReplicas = checkReplicaWait(options.waitForReplicas, isCluster(redis));
      if (options.pubSub !== false) this.wakeUps = new WakeUpHub(redis, this.logger);
    }
    this.acquirer = new LockAcquirer(this, {
      store: this.store,
      redisStore,
      wakeUps: this.wakeUps,
      fairQueueTimeout,
      maxLocalPasses,
      waitForReplicas,
      logger: this.logger,
    });
  }

  /**
   * One attempt: the lock, or `null` when another owner holds it (or, in fair mode, when others
   * queue for it).
   * @throws LockUnavailableError when Redis cannot be reached.
   * @throws InvalidLockKeyError on an empty or over-long key.
   */
  async tryAcquire(key: LockKeys, options: LockOptions = {}): Promise<RedisLockHandle | null> {
    try {
      return await this.acquireTarget(lockTarget(this.keyPrefix, key), options, true);
    } catch (err) {
      if (err instanceof LockNotAcquiredError && !err.aborted) return null;
      throw err;
    }
  }

  /**
   * Takes the lock, waiting up to `waitTimeout` while it is busy. With several keys, takes all of
   * them at once or none.
   * @throws LockNotAcquiredError when the wait times out or is aborted.
   * @throws LockUnavailableError when Redis cannot be reached.
   */
  acquire(key: LockKeys, options: LockOptions = {}): Promise<RedisLockHandle> {
    // Not async (a grant reaches the caller sooner), yet it never throws: bad input rejects.
    try {
      return this.acquireTarget(lockTarget(this.keyPrefix, key), options);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Runs `fn` under the lock: acquires (waiting as configured), renews the lease while `fn` runs
   * and releases when it settles. Called again for the same key from inside `fn`, it joins the
   * held lock instead of deadlocking on itself.
   * @throws LockNotAcquiredError, LockUnavailableError as `acquire` does; whatever `fn` throws.
   */
  async run<T>(
    key: LockKeys,
    fn: (lock: RedisLockHandle) => T | Promise<T>,
    options: LockOptions = {},
  ): Promise<T> {
    const scope = await this.enter(key, options);
    try {
      return await this.runInScope(scope, () => fn(scope.handle));
    } finally {
      await this.exit(scope);
    }
  }

  /**
   * Whether any owner holds the key right now (a snapshot: it may change at once).
   * @throws LockUnavailableError when Redis cannot be reached.
   */
  async isLocked(key: string): Promise<boolean> {
    const { locks } = lockTarget(this.keyPrefix, key);
    try {
      return await answerWithin(this.store.isLocked(locks[0]), ATTEMPT_TIMEOUT);
    } catch (err) {
      throw new LockUnavailableError(key, err);
    }
  }

  /**
   * Takes the lock for a scope, or joins it when the current async call chain already holds it.
   * With several keys, joins those already held and takes the others together.
   * Pair with `runInScope` and `exit`; `run` does all three.
   */
  async enter(key: LockKeys, options: LockOptions = {}): Promise<LockScope> {
    const held = this.context.getStore();
    let target = lockTarget(this.keyPrefix, key);
    if (held) {
      const missing = target.keys.filter((_, i) => !held.get(target.locks[i])?.isHeld());
      if (missing.length === 0) return { handle: held.get(target.locks[0])!, owned: false };
      if (missing.length < target.keys.length) target = lockTarget(this.keyPrefix, missing);
    }
    const handle = await this.acquireTarget(target, {
      ...options,
      autoRenew: options.autoRenew ?? true,
    });
    return { handle, owned: true };
  }

  /** Runs `fn` with the scope's lock visible to reentrant calls made from inside it. */
  runInScope<T>(scope: LockScope, fn: () => T): T {
    if (!scope.owned) return fn();
    const inner = new Map(this.context.getStore());
    for (const lockKey of scope.handle.target.locks) inner.set(lockKey, scope.handle);
    return this.context.run(inner, fn);
  }

  /** Releases an owned scope; a failed release is logged, since the lease will expire anyway. */
  async exit(scope: LockScope): Promise<void> {
    if (!scope.owned) return;
    try {
      await scope.handle.release();
    } catch (err) {
      this.logger.warn(releaseFailedWarning(scope.handle.key, (err as Error).message));
    }
  }

  /**
   * Graceful shutdown, first step: takes no new locks (every wait ends and every new acquire
   * fails with `LockUnavailableError`, the client being closed), then waits up to `timeout` ms
   * for the locks this client holds to be released (or lost, or their fixed lease to run out),
   * renewing them meanwhile, so work running under them finishes exclusive. Resolves with the
   * names of the locks still held then; `close()` releases them.
   * @throws RangeError unless `timeout` is an integer of ms from 0 to 2^31-1.
   * @example
   * const stillHeld = await locks.drain(10_000);
   * if (stillHeld.length) logger.warn(`releasing ${stillHeld.join(', ')} unfinished`);
   * await locks.close();
   */
  async drain(timeout: number): Promise<string[]> {
    checkDrainTimeout(timeout);
    this.stopAcquiring();
    const left = await heldAfterDrain(
      () => this.held,
      timeout,
      (wake) => {
        this.settledListeners.add(wake);
        return () => this.settledListeners.delete(wake);
      },
    );
    return left.map((handle) => handle.key);
  }

  /**
   * Stops every watchdog, releases every lock this client holds (each release given up on when
   * Redis does not answer in time: its lease then expires), ends every wait and closes the
   * pub/sub connection. Leaves `redis` open. Call `drain()` first to let running work finish.
   */
  async close(): Promise<void> {
    this.stopAcquiring();
    await Promise.all(
      [...this.held].map((handle) =>
        handle
          .release()
          .catch((err: Error) => this.logger.warn(releaseFailedWarning(handle.key, err.message))),
      ),
    );
  }

  private stopAcquiring(): void {
    this.acquirer.close();
    this.wakeUps?.close();
  }

  /** @internal called by a handle once it is released or lost. */
  settled(handle: RedisLockHandle): void {
    this.held.delete(handle);
    this.acquirer.settled(handle);
    for (const listener of this.settledListeners) listener();
  }

  /** @internal called by a handle being released: may pass the lock to a waiter instead. */
  passOn(handle: RedisLockHandle, leaseEnds: number): boolean {
    return this.acquirer.passOn(handle, leaseEnds);
  }

  /** @internal called by the acquirer for every lock it grants. */
  track(handle: RedisLockHandle): void {
    this.held.add(handle);
  }

  /** `once`: a single attempt whatever `waitTimeout` says (`tryAcquire`). */
  private acquireTarget(
    target: LockTarget,
    options: LockOptions,
    once = false,
  ): Promise<RedisLockHandle> {
    return this.acquirer.acquire(target, resolveLockOptions(options, this.defaults, once));
  }
}

/** @throws RangeError on replicas or a timeout that are not positive integers. */
function checkReplicaWait(
  wait: ReplicaWait | undefined,
  cluster: boolean,
): ReplicaWait | undefined {
  if (wait === undefined) return undefined;
  if (cluster) {
    // WAIT must go to the master that took the write; a Cluster client sends it to any node.
    throw new RangeError(
      invalidOptionMessage('waitForReplicas', wait, 'no value with Redis Cluster (not supported)'),
    );
  }
  const { replicas, timeout } = wait;
  if (!Number.isInteger(replicas) || replicas < 1) {
    throw new RangeError(
      invalidOptionMessage('waitForReplicas.replicas', replicas, 'a positive integer'),
    );
  }
  if (!Number.isInteger(timeout) || timeout < 1) {
    throw new RangeError(
      invalidOptionMessage(
        'waitForReplicas.timeout',
        timeout,
        'a positive integer of milliseconds',
      ),
    );
  }
  return { replicas, timeout };
}
