import { AsyncLocalStorage } from 'node:async_hooks';
import { LockNotAcquiredError, LockUnavailableError } from '../errors/lock.errors.js';
import { LockModeError } from '../errors/lock-mode.error.js';
import type { LockOptions, TryAcquireOptions } from '../interfaces/lock-options.interface.js';
import {
  ATTEMPT_TIMEOUT,
  DEFAULT_FAIR_QUEUE_TIMEOUT,
  DEFAULT_KEY_PREFIX,
  DEFAULT_LOCAL_PASSES,
  MAX_LOCAL_PASSES,
  MAX_TIMER_DELAY,
} from '../redis-lock.constants.js';
import {
  invalidOptionMessage,
  releaseFailedWarning,
  rwUnsupportedMessage,
  rwUpgradeMessage,
  timerDelayExpected,
} from '../redis-lock.messages.js';
import { checkDrainTimeout, heldAfterDrain } from './lease/lock-drain.js';
import { LockAcquirer } from './waiting/lock.acquirer.js';
import type { GrantOwner } from './waiting/lock-grants.js';
import {
  resolveClientDefaults,
  resolveLockOptions,
  type ResolvedLockOptions,
} from './lock-options.resolver.js';
import type { LockStore } from './redis/lock-store.interface.js';
import { lockTarget, type LockTarget } from './keys/lock-target.js';
import { modeOf, rwLockTarget } from './keys/rw-lock-target.js';
import { RwLockAcquirer } from './waiting/rw-lock.acquirer.js';
import { isTimerDelay } from './lease/long-timeout.js';
import { observeAcquire, type LockObserver } from './lock-observer.js';
import { answerWithin } from './waiting/race-attempt.js';
import { isCluster, type RedisClient } from './redis/redis-connection.js';
import { probeStore, type StoreProbe } from './redis/store-probe.js';
import type {
  LockLogger,
  RedisLockClientOptions,
  ReplicaWait,
} from './redis-lock-client.options.js';
import { RedisLockHandle } from './lease/redis-lock.handle.js';
import { RenewalBatcher } from './lease/renewal.batcher.js';
import { RedisStore } from './redis/redis.store.js';
import { RedlockStore } from './redis/redlock.store.js';
import { ScopeHolds } from './lease/scope-holds.js';
import { WakeUpHub } from './waiting/wake-up.hub.js';
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
  /**
   * False when the lock was joined from an enclosing call. Either way the lock stays held until the
   * last scope holding it exits, whichever that is.
   */
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
export class RedisLockClient implements GrantOwner {
  /** The Redis (or Cluster) the locks live on; undefined with Redlock or an in-memory store. */
  readonly redis?: RedisClient;
  /** @internal where the locks live, for the handles. */
  readonly store: LockStore;
  /** @internal the watchdog's renewals of this client's locks, sent in batches. */
  readonly renewals: RenewalBatcher;
  readonly logger: LockLogger;
  private readonly keyPrefix: string;
  private readonly defaults: ResolvedLockOptions;
  private readonly acquirer: LockAcquirer;
  /** Read-write locks (`mode`): on one Redis or a Cluster only (else why not, for the error). */
  private readonly rw: RwLockAcquirer | string;
  private readonly wakeUps?: WakeUpSource;
  private readonly observer?: LockObserver;
  /** Every connection the locks use: the one Redis or Cluster, or each Redlock master. */
  private readonly nodes: readonly RedisClient[];
  /** Semaphores: undefined with Redlock, which refuses them. */
  private readonly permits?: PermitAcquirer;
  private readonly held = new Set<RedisLockHandle>();
  /** Which scopes hold which locks: reentrant locks are released by the last scope to exit. */
  private readonly holds = new ScopeHolds();
  /** Called whenever a held lock is let go: a drain waits on them. */
  private readonly settledListeners = new Set<() => void>();
  // One per client: two Nest apps in one process never join each other's locks.
  private readonly context = new AsyncLocalStorage<HeldInContext>();

  constructor(options: RedisLockClientOptions) {
    const backends = [options.redis, options.redlock, options.memory];
    if (backends.filter((backend) => backend !== undefined).length !== 1) {
      throw new TypeError(
        invalidOptionMessage('redis', options.redis, 'one of redis, redlock or memory'),
      );
    }
    this.redis = options.redis;
    this.nodes = options.redlock ? options.redlock.clients : options.redis ? [options.redis] : [];
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.logger = options.logger ?? { warn: (message) => process.emitWarning(message) };
    this.defaults = resolveClientDefaults(options);
    this.observer = options.observer;
    const fairQueueTimeout = options.fairQueueTimeout ?? DEFAULT_FAIR_QUEUE_TIMEOUT;
    // It is also the lease of a hand-over, which the handle's expiry timer counts down.
    if (!isTimerDelay(fairQueueTimeout)) {
      throw new RangeError(
        invalidOptionMessage(
          'fairQueueTimeout',
          fairQueueTimeout,
          timerDelayExpected(MAX_TIMER_DELAY),
        ),
      );
    }
    const maxLocalPasses = options.maxLocalPasses ?? DEFAULT_LOCAL_PASSES;
    if (!(Number.isInteger(maxLocalPasses) || maxLocalPasses === Infinity) || maxLocalPasses < 0) {
      throw new RangeError(
        invalidOptionMessage('maxLocalPasses', maxLocalPasses, 'an integer >= 0, or Infinity'),
      );
    }
    let redisStore: RedisStore | undefined;
    let waitForReplicas: ReplicaWait | undefined;
    if (options.memory) {
      this.store = options.memory;
      if (options.waitForReplicas !== undefined) {
        throw new RangeError(
          invalidOptionMessage('waitForReplicas', options.waitForReplicas, 'no value with memory'),
        );
      }
      if (options.pubSub !== false) this.wakeUps = options.memory.wakeUps();
    } else if (options.redlock) {
      this.store = new RedlockStore(options.redlock);
      if (options.waitForReplicas !== undefined) {
        throw new RangeError(
          invalidOptionMessage('waitForReplicas', options.waitForReplicas, 'no value with redlock'),
        );
      }
    } else {
      const redis = options.redis as RedisClient;
      this.store = redisStore = new RedisStore(redis);
      waitForReplicas = checkReplicaWait(options.waitForReplicas, isCluster(redis));
      if (options.pubSub !== false) this.wakeUps = new WakeUpHub(redis, this.logger);
    }
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
    this.acquirer = new LockAcquirer(this, {
      store: this.store,
      redisStore,
      wakeUps: this.wakeUps,
      fairQueueTimeout,
      // A bound, so fewer is always allowed: the fencing tokens a grant leaves free cap it.
      maxLocalPasses: Math.min(maxLocalPasses, MAX_LOCAL_PASSES),
      waitForReplicas,
      logger: this.logger,
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
    this.holds.hold([handle]);
    return this.holds.record({ handle, owned: true }, [handle]);
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
  async enter(key: LockKeys, options: LockOptions = {}): Promise<LockScope> {
    if (options.mode !== undefined) return this.enterRw(key, options);
    let target = lockTarget(this.keyPrefix, key);
    const joined: RedisLockHandle[] = [];
    const missing: string[] = [];
    const held = this.context.getStore();
    target.keys.forEach((name, i) => {
      // A lock lost meanwhile is not joined: the call waits for it like any other caller.
      const handle = held?.get(target.locks[i]);
      // A read-write lock is not joined: Redis refuses the key's other use with a clear error.
      if (!handle?.isHeld() || modeOf(handle.target)) missing.push(name);
      else if (!joined.includes(handle)) joined.push(handle);
    });
    // Counted before any wait for the other keys, so the joined ones stay held meanwhile.
    this.holds.hold(joined);
    if (missing.length === 0) {
      return this.holds.record({ handle: joined[0], owned: false }, joined);
    }
    if (joined.length > 0) target = lockTarget(this.keyPrefix, missing);
    let handle: RedisLockHandle;
    try {
      handle = await this.acquireTarget(target, {
        ...options,
        autoRenew: options.autoRenew ?? true,
      });
    } catch (err) {
      await this.releaseAll(this.holds.letGo(joined));
      throw err;
    }
    this.holds.hold([handle]);
    return this.holds.record({ handle, owned: true }, [handle, ...joined]);
  }

  /**
   * `enter` for a read-write lock: a read or write inside a write lock on the key joins it, a read
   * inside a read joins it; a write inside a read is refused (see `LockModeError`).
   */
  private async enterRw(key: LockKeys, options: LockOptions): Promise<LockScope> {
    if (typeof key === 'string') {
      const held = this.context.getStore()?.get(lockTarget(this.keyPrefix, key).locks[0]);
      const heldMode = held?.isHeld() ? modeOf(held.target) : undefined;
      if (held && (heldMode === 'write' || (heldMode === 'read' && options.mode === 'read'))) {
        this.holds.hold([held]);
        return this.holds.record({ handle: held, owned: false }, [held]);
      }
      if (heldMode === 'read' && options.mode === 'write') {
        throw new LockModeError(rwUpgradeMessage(key));
      }
    }
    const handle = await this.acquireKey(key, {
      ...options,
      autoRenew: options.autoRenew ?? true,
    });
    this.holds.hold([handle]);
    return this.holds.record({ handle, owned: true }, [handle]);
  }

  /** Runs `fn` with the scope's lock visible to reentrant calls made from inside it. */
  runInScope<T>(scope: LockScope, fn: () => T): T {
    // A permit is no lock: a reentrant lock call on the same key must not join it.
    if (!scope.owned || scope.handle instanceof RedisPermitHandle) return fn();
    const inner = new Map(this.context.getStore());
    for (const lockKey of scope.handle.target.locks) inner.set(lockKey, scope.handle);
    return this.context.run(inner, fn);
  }

  /**
   * Ends a scope: releases the locks no other scope holds any more (a failed release is logged,
   * since the lease will expire anyway). The scope that took a lock resolves without releasing it
   * while joined scopes still run; those keep it renewed, even when it was taken without the
   * watchdog. Exiting a scope again does nothing.
   */
  async exit(scope: LockScope): Promise<void> {
    const handles = this.holds.end(scope);
    if (!handles) {
      // Ended before (or made outside `enter`): an owned lock is released if no one holds it.
      if (scope.owned && !this.holds.isHeld(scope.handle)) await this.discard(scope.handle);
      return;
    }
    const free = this.holds.letGo(handles);
    if (scope.owned && this.holds.isHeld(scope.handle)) scope.handle.keepRenewing();
    await this.releaseAll(free);
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
    // Scopes still open, joined ones included, hold nothing once the client is closed.
    this.holds.clear();
    await this.releaseAll([...this.held]);
  }

  private stopAcquiring(): void {
    this.acquirer.close();
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
    if (!observation) return this.acquirer.acquire(target, opts);
    return observeAcquire(observation, async () => this.acquirer.acquire(target, opts));
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
