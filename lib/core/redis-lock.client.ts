/* The Nest-free lock client: its public API, wiring the store, the acquisition and the scopes. */
import { LockNotAcquiredError, LockUnavailableError } from '../errors/lock.errors.js';
import { LockModeError } from '../errors/lock-mode.error.js';
import type { LockOptions, TryAcquireOptions } from '../interfaces/lock-options.interface.js';
import { ATTEMPT_TIMEOUT, DEFAULT_KEY_PREFIX, MAX_LOCAL_PASSES } from '../redis-lock.constants.js';
import { releaseFailedWarning, rwUnsupportedMessage } from '../redis-lock.messages.js';
import { checkDrainTimeout } from './lease/lock-drain.js';
import { HeldLocks } from './lease/held-locks.js';
import { LockAcquisition } from './waiting/lock-acquisition.js';
import type { AttemptOwner } from './waiting/acquire-attempts.js';
import {
  resolveClientDefaults,
  resolveLockOptions,
  type ResolvedLockOptions,
} from './lock-options.resolver.js';
import type { LockStore } from './redis/lock-store.interface.js';
import { lockTarget, type LockTarget } from './keys/lock-target.js';
import { rwLockTarget } from './keys/rw-lock-target.js';
import { RwLockAcquirer } from './waiting/rw-lock.acquirer.js';
import { observeAcquire, type LockObserver } from './lock-observer.js';
import { answerWithin } from './waiting/race-attempt.js';
import type { RedisClient } from './redis/redis-connection.js';
import { probeStore, type StoreProbe } from './redis/store-probe.js';
import type { LockLogger, RedisLockClientOptions } from './redis-lock-client.options.js';
import { RedisLockHandle } from './lease/redis-lock.handle.js';
import { RenewalBatcher } from './lease/renewal.batcher.js';
import { LockScopes, type LockKeys, type LockScope } from './lease/lock-scopes.js';
import { checkOneBackend, checkWaitOptions, openBackend } from './lock-backend.js';
import { LockError } from '../errors/lock.errors.js';
import type { PermitOptions } from '../interfaces/permit-options.interface.js';
import { semaphoreUnsupportedMessage } from '../redis-lock.messages.js';
import { semaphoreTarget } from './keys/lock-target.js';
import { MemoryPermitStore } from './semaphore/memory-permit.store.js';
import { PermitAcquirer } from './semaphore/permit.acquirer.js';
import { resolvePermitOptions } from './semaphore/permit-options.resolver.js';
import { RedisPermitStore } from './semaphore/permit.store.js';
import { RedisPermitHandle } from './semaphore/redis-permit.handle.js';
import type { WakeUpSource } from './waiting/wake-up-source.interface.js';

export type { LockKeys, LockScope } from './lease/lock-scopes.js';

/**
 * The Nest-free core: takes, waits for, renews and releases locks on one Redis (also through
 * Sentinel), a Redis Cluster, or a Redlock quorum of masters. It wires the parts: scopes and
 * reentrancy in `LockScopes`, the acquiring and waiting in `LockAcquisition`, the Redis side in a
 * `LockStore`. `LockService` is a thin Nest wrapper around it; use it directly in scripts or other
 * frameworks.
 *
 * @example
 * const locks = new RedisLockClient({ redis: new Redis('redis://localhost:6379') });
 * await locks.run('report:daily', async (lock) => buildReport({ signal: lock.signal }));
 * await locks.close();
 */
export class RedisLockClient implements AttemptOwner {
  /** The Redis (or Cluster) the locks live on; undefined with Redlock or an in-memory store. */
  readonly redis?: RedisClient;
  /** @internal where the locks live, for the handles. */
  readonly store: LockStore;
  /** @internal the watchdog's renewals of this client's locks, sent in batches. */
  readonly renewals: RenewalBatcher;
  readonly logger: LockLogger;
  private readonly keyPrefix: string;
  private readonly defaults: ResolvedLockOptions;
  private readonly acquisition: LockAcquisition;
  /** Read-write locks (`mode`): on one Redis or a Cluster only (else why not, for the error). */
  private readonly rw: RwLockAcquirer | string;
  private readonly wakeUps?: WakeUpSource;
  private readonly observer?: LockObserver;
  /** Every connection the locks use: the one Redis or Cluster, or each Redlock master. */
  private readonly nodes: readonly RedisClient[];
  private readonly held = new HeldLocks();
  /** Reentrancy: which async call chains hold which locks. */
  private readonly scopes: LockScopes;
  /** Semaphores: undefined with Redlock, which refuses them. */
  private readonly permits?: PermitAcquirer;

  constructor(options: RedisLockClientOptions) {
    checkOneBackend(options);
    this.redis = options.redis;
    this.nodes = options.redlock ? options.redlock.clients : options.redis ? [options.redis] : [];
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.logger = options.logger ?? { warn: (message) => process.emitWarning(message) };
    this.defaults = resolveClientDefaults(options);
    this.observer = options.observer;
    const { fairQueueTimeout, maxLocalPasses } = checkWaitOptions(options);
    const { store, redisStore, wakeUps, waitForReplicas } = openBackend(options, this.logger);
    this.store = store;
    this.wakeUps = wakeUps;
    this.renewals = new RenewalBatcher(this.store);
    this.rw = options.memory
      ? 'the in-memory store'
      : options.redlock
        ? 'Redlock'
        : new RwLockAcquirer(this, {
            redis: options.redis as RedisClient,
            wakeUps: this.wakeUps,
            fairQueueTimeout,
            logger: this.logger,
          });
    this.acquisition = new LockAcquisition(this, {
      store: this.store,
      redisStore,
      wakeUps: this.wakeUps,
      fairQueueTimeout,
      // A bound, so fewer is always allowed: the fencing tokens a grant leaves free cap it.
      maxLocalPasses: Math.min(maxLocalPasses, MAX_LOCAL_PASSES),
      waitForReplicas,
      logger: this.logger,
    });
    this.scopes = new LockScopes(this.keyPrefix, {
      acquire: (target, options) => this.acquireTarget(target, options),
      acquireKey: (key, options) => this.acquireKey(key, options),
      releaseAll: (handles) => this.releaseAll(handles),
      discard: (handle) => this.discard(handle),
    });
    const permitStore = options.memory
      ? new MemoryPermitStore(options.memory)
      : redisStore && new RedisPermitStore(redisStore.redis);
    if (permitStore) this.permits = new PermitAcquirer(this, permitStore, this.wakeUps);
  }

  /**
   * One attempt at a permit of the semaphore on `key`: at most `options.permits` holders at once.
   * Resolves the permit, or `null` when all are held.
   * @throws LockError with Redlock, which does not support semaphores.
   * @throws LockUnavailableError, InvalidLockKeyError, RangeError/TypeError on bad options.
   * @example
   * const permit = await locks.tryAcquirePermit('payments-api', { permits: 5 });
   * if (!permit) return 'busy';
   */
  async tryAcquirePermit(key: string, options: PermitOptions): Promise<RedisPermitHandle | null> {
    try {
      return await this.takePermit(key, options, true);
    } catch (err) {
      if (err instanceof LockNotAcquiredError && !err.aborted) return null;
      throw err;
    }
  }

  /**
   * Takes a permit of the semaphore on `key`, waiting up to `waitTimeout` while all
   * `options.permits` are held. Each permit has its own lease (and watchdog with `autoRenew`).
   * @throws PermitNotAcquiredError when the wait times out or is aborted.
   * @throws LockError with Redlock; LockUnavailableError, InvalidLockKeyError, RangeError.
   * @example
   * const permit = await locks.acquirePermit('payments-api', { permits: 5, waitTimeout: 2_000 });
   * try { await pay(); } finally { await permit.release(); }
   */
  acquirePermit(key: string, options: PermitOptions): Promise<RedisPermitHandle> {
    try {
      return this.takePermit(key, options);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Runs `fn` holding a permit of the semaphore on `key`: acquires (waiting as configured),
   * renews its lease while `fn` runs, gives it back when `fn` settles. Not reentrant: a nested
   * call takes a second permit.
   * @throws PermitNotAcquiredError, LockUnavailableError as `acquirePermit`; whatever `fn` throws.
   * @example
   * await locks.runWithPermit('payments-api', (permit) => pay(permit.signal), { permits: 5 });
   */
  async runWithPermit<T>(
    key: string,
    fn: (permit: RedisPermitHandle) => T | Promise<T>,
    options: PermitOptions,
  ): Promise<T> {
    const scope = await this.enterPermit(key, options);
    try {
      return await fn(scope.handle as RedisPermitHandle);
    } finally {
      await this.exit(scope);
    }
  }

  /**
   * A scope holding a permit (renewed by default), for `@Semaphore`: pair with `runInScope` and
   * `exit` as for `enter`. A permit is never joined by reentrant calls.
   * @throws as `acquirePermit`.
   */
  async enterPermit(key: string, options: PermitOptions): Promise<LockScope> {
    const handle = await this.takePermit(key, { ...options, autoRenew: options.autoRenew ?? true });
    return this.scopes.enterTaken(handle);
  }

  /**
   * @internal Why this client cannot hold semaphores (Redlock), or undefined when it can: the
   * module refuses `@Semaphore` methods at startup with it.
   */
  semaphoresRefused(): string | undefined {
    return this.permits ? undefined : semaphoreUnsupportedMessage('Redlock');
  }

  private takePermit(key: string, options: PermitOptions, once = false) {
    if (!this.permits) throw new LockError(this.semaphoresRefused()!);
    const target = semaphoreTarget(this.keyPrefix, key);
    return this.permits.acquire(target, resolvePermitOptions(options, this.defaults, once));
  }

  /**
   * One attempt: the lock, or `null` when another owner holds it (or, in fair mode, when others
   * queue for it).
   * @throws LockUnavailableError when Redis cannot be reached.
   * @throws InvalidLockKeyError on an empty or over-long key.
   */
  async tryAcquire(
    key: LockKeys,
    options: TryAcquireOptions = {},
  ): Promise<RedisLockHandle | null> {
    try {
      return await this.acquireKey(key, options, true);
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
      return this.acquireKey(key, options);
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
   * Whether any owner holds the key right now (a snapshot: it may change at once). Given several
   * keys, whether any of them is held: the question "is this multi-key lock taken?", whose `true`
   * means `tryAcquire` on the same keys would be refused.
   * @throws LockUnavailableError when Redis cannot be reached.
   * @throws InvalidLockKeyError on an empty or over-long key, or an empty array.
   */
  async isLocked(key: LockKeys): Promise<boolean> {
    const { name, locks } = lockTarget(this.keyPrefix, key);
    try {
      // One check per key: on a Cluster the keys of a lock may sit in different slots.
      const checks = Promise.all(locks.map((lockKey) => this.store.isLocked(lockKey)));
      return (await answerWithin(checks, ATTEMPT_TIMEOUT)).includes(true);
    } catch (err) {
      throw new LockUnavailableError(name, err);
    }
  }

  /**
   * Pings every node the locks live on (each Cluster master, each Redlock master), for health
   * checks: which answer and how fast. `up` when locks can be taken (Redlock: a majority answers).
   * Never throws: a node that fails or does not answer within `timeout` ms is reported down.
   * @example
   * const { up, roundTripMs, nodes } = await locks.probe();
   */
  probe(timeout: number = ATTEMPT_TIMEOUT): Promise<StoreProbe> {
    // The in-memory store of tests always answers, at once.
    if (this.nodes.length === 0) {
      return Promise.resolve({ topology: 'memory', up: true, roundTripMs: 0, nodes: [] });
    }
    return probeStore(this.nodes, this.redis === undefined, timeout);
  }

  /**
   * Takes the lock for a scope, or joins it when the current async call chain already holds it.
   * With several keys, joins those already held and takes the others together. A lock is released
   * when the last scope holding it exits: the one that took it, or one that joined it and outlived
   * it (a call started inside the scope and not awaited), which keeps it renewed until then.
   * Pair with `runInScope` and `exit`; `run` does all three.
   * @throws LockNotAcquiredError, LockUnavailableError as `acquire` does.
   */
  enter(key: LockKeys, options: LockOptions = {}): Promise<LockScope> {
    return this.scopes.enter(key, options);
  }

  /** Runs `fn` with the scope's lock visible to reentrant calls made from inside it. */
  runInScope<T>(scope: LockScope, fn: () => T): T {
    return this.scopes.runInScope(scope, fn);
  }

  /**
   * Ends a scope: releases the locks no other scope holds any more (a failed release is logged,
   * since the lease will expire anyway). The scope that took a lock resolves without releasing it
   * while joined scopes still run; those keep it renewed, even when it was taken without the
   * watchdog. Exiting a scope again does nothing.
   */
  exit(scope: LockScope): Promise<void> {
    return this.scopes.exit(scope);
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
    return this.held.drain(timeout);
  }

  /**
   * Stops every watchdog, releases every lock this client holds (each release given up on when
   * Redis does not answer in time: its lease then expires), ends every wait and closes the
   * pub/sub connection. Leaves `redis` open. Call `drain()` first to let running work finish.
   */
  async close(): Promise<void> {
    this.stopAcquiring();
    this.scopes.clear();
    await this.releaseAll(this.held.all());
  }

  private stopAcquiring(): void {
    this.acquisition.close();
    this.permits?.close();
    if (typeof this.rw !== 'string') this.rw.close();
    this.wakeUps?.close();
  }

  /** @internal releases a lock no scope holds, logging a failure: the lease will expire anyway. */
  async discard(handle: RedisLockHandle): Promise<void> {
    try {
      await handle.release();
    } catch (err) {
      this.logger.warn(releaseFailedWarning(handle.key, (err as Error).message));
    }
  }

  /** @internal called by a handle once it is released or lost. */
  ended(handle: RedisLockHandle): void {
    this.held.delete(handle);
    this.acquisition.ended(handle);
    this.held.wakeDrains();
  }

  /** @internal called by a handle being released: may pass the lock to a waiter instead. */
  passOn(handle: RedisLockHandle, leaseEnds: number): boolean {
    return this.acquisition.passOn(handle, leaseEnds);
  }

  /** @internal called by the acquisition for every lock it grants. */
  track(handle: RedisLockHandle): void {
    this.held.add(handle);
  }

  private async releaseAll(handles: readonly RedisLockHandle[]): Promise<void> {
    await Promise.all(handles.map((handle) => this.discard(handle)));
  }

  /** @internal Why read-write locks (`mode`) are refused here (the backend), if they are. */
  get rwUnsupported(): string | undefined {
    return typeof this.rw === 'string' ? rwUnsupportedMessage(this.rw) : undefined;
  }

  /**
   * A plain lock on `key`, or a read-write lock's side with `mode`.
   * @throws InvalidLockKeyError, LockModeError, RangeError, TypeError on bad input (not async).
   */
  private acquireKey(key: LockKeys, options: LockOptions, once = false): Promise<RedisLockHandle> {
    if (options.mode === undefined) {
      return this.acquireTarget(lockTarget(this.keyPrefix, key), options, once);
    }
    const opts = resolveLockOptions(options, this.defaults, once);
    if (typeof this.rw === 'string') throw new LockModeError(rwUnsupportedMessage(this.rw));
    const waits = opts.waitTimeout > 0;
    return this.rw.acquire(rwLockTarget(this.keyPrefix, key, opts.mode!, waits), opts);
  }

  /** `once`: a single attempt whatever `waitTimeout` says (`tryAcquire`). */
  private acquireTarget(
    target: LockTarget,
    options: LockOptions,
    once = false,
  ): Promise<RedisLockHandle> {
    const opts = resolveLockOptions(options, this.defaults, once);
    const observation = this.observer?.acquireStarted({
      key: target.name,
      keys: target.keys,
      mode: opts.fair ? 'fair' : 'default',
      waitTimeout: opts.waitTimeout,
    });
    if (!observation) return this.acquisition.acquire(target, opts);
    return observeAcquire(observation, async () => this.acquisition.acquire(target, opts));
  }
}
