import { AsyncLocalStorage } from 'node:async_hooks';
import type { Redis } from 'ioredis';
import {
  InvalidLockKeyError,
  LockNotAcquiredError,
  LockUnavailableError,
} from '../errors/lock.errors.js';
import type { LockOptions } from '../interfaces/lock-options.interface.js';
import {
  DEFAULT_KEY_PREFIX,
  MAX_KEY_LENGTH,
  ATTEMPT_TIMEOUT,
  FINAL_ATTEMPT_GRACE,
} from '../redis-lock.constants.js';
import {
  attemptTimeoutMessage,
  invalidKeyMessage,
  releaseFailedWarning,
} from '../redis-lock.messages.js';
import { abortableDelay, monotonicNow } from './abortable-delay.js';
import {
  resolveClientDefaults,
  resolveLockOptions,
  type ResolvedLockOptions,
} from './lock-options.resolver.js';
import { answerWithin, raceAttempt } from './race-attempt.js';
import { LockScripts } from './lock.scripts.js';
import { newLockToken } from './lock-token.js';
import type { LockLogger, RedisLockClientOptions } from './redis-lock-client.options.js';
import { RedisLockHandle, type LockHandleOwner } from './redis-lock.handle.js';

/** Locks held by the current async call chain, by Redis key: what reentrant calls join. */
type HeldInContext = ReadonlyMap<string, RedisLockHandle>;

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
 * The Nest-free core: takes, waits for, renews and releases locks on one Redis. `LockService`
 * is a thin Nest wrapper around it; use it directly in scripts or other frameworks.
 *
 * @example
 * const locks = new RedisLockClient({ redis: new Redis('redis://localhost:6379') });
 * await locks.run('report:daily', async (lock) => buildReport({ signal: lock.signal }));
 * await locks.close();
 */
export class RedisLockClient implements LockHandleOwner {
  readonly redis: Redis;
  readonly logger: LockLogger;
  private readonly keyPrefix: string;
  private readonly defaults: ResolvedLockOptions;
  private readonly held = new Set<RedisLockHandle>();
  // One per client: two Nest apps in one process never join each other's locks.
  private readonly context = new AsyncLocalStorage<HeldInContext>();
  private closed = false;

  constructor(options: RedisLockClientOptions) {
    this.redis = options.redis;
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.logger = options.logger ?? { warn: (message) => process.emitWarning(message) };
    this.defaults = resolveClientDefaults(options);
  }

  /**
   * One attempt: the lock, or `null` when another owner holds it.
   * @throws LockUnavailableError when Redis cannot be reached.
   * @throws InvalidLockKeyError on an empty or over-long key.
   */
  async tryAcquire(key: string, options: LockOptions = {}): Promise<RedisLockHandle | null> {
    return this.acquireWith(key, { ...options, waitTimeout: 0 }).catch((err: unknown) => {
      if (err instanceof LockNotAcquiredError && !err.aborted) return null;
      throw err;
    });
  }

  /**
   * Takes the lock, waiting up to `waitTimeout` while it is busy.
   * @throws LockNotAcquiredError when the wait times out or is aborted.
   * @throws LockUnavailableError when Redis cannot be reached.
   */
  acquire(key: string, options: LockOptions = {}): Promise<RedisLockHandle> {
    return this.acquireWith(key, options);
  }

  /**
   * Runs `fn` under the lock: acquires (waiting as configured), renews the lease while `fn` runs
   * and releases when it settles. Called again for the same key from inside `fn`, it joins the
   * held lock instead of deadlocking on itself.
   * @throws LockNotAcquiredError, LockUnavailableError as `acquire` does; whatever `fn` throws.
   */
  async run<T>(
    key: string,
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
    const redisKey = this.redisKey(key);
    try {
      return (await answerWithin(this.redis.exists(redisKey), ATTEMPT_TIMEOUT)) === 1;
    } catch (err) {
      throw new LockUnavailableError(key, err);
    }
  }

  /**
   * Takes the lock for a scope, or joins it when the current async call chain already holds it.
   * Pair with `runInScope` and `exit`; `run` does all three.
   */
  async enter(key: string, options: LockOptions = {}): Promise<LockScope> {
    const joined = this.context.getStore()?.get(this.redisKey(key));
    if (joined?.isHeld()) return { handle: joined, owned: false };
    const handle = await this.acquireWith(key, {
      ...options,
      autoRenew: options.autoRenew ?? true,
    });
    return { handle, owned: true };
  }

  /** Runs `fn` with the scope's lock visible to reentrant calls made from inside it. */
  runInScope<T>(scope: LockScope, fn: () => T): T {
    if (!scope.owned) return fn();
    const outer = this.context.getStore();
    const inner = new Map(outer).set(scope.handle.redisKey, scope.handle);
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

  /** Stops every watchdog and releases every lock this client holds. Leaves `redis` open. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.held].map((handle) => this.exit({ handle, owned: true })));
  }

  /** @internal called by a handle once it is released or lost. */
  settled(handle: RedisLockHandle): void {
    this.held.delete(handle);
  }

  private async acquireWith(key: string, options: LockOptions): Promise<RedisLockHandle> {
    const redisKey = this.redisKey(key);
    const opts = resolveLockOptions(options, this.defaults);
    const started = monotonicNow();
    const deadline = started + opts.waitTimeout;
    const waited = () => Math.round(monotonicNow() - started);
    for (let attempt = 1; ; attempt++) {
      if (opts.signal?.aborted) throw new LockNotAcquiredError(key, waited(), true);
      const outcome = await this.attempt(
        key,
        redisKey,
        opts,
        opts.waitTimeout > 0 ? deadline : undefined,
      );
      if (outcome instanceof RedisLockHandle) return outcome;
      if (outcome === 'aborted') throw new LockNotAcquiredError(key, waited(), true);
      const remaining = deadline - monotonicNow();
      const delay = outcome === 'busy' && remaining > 0 ? opts.retry(attempt) : null;
      if (delay === null || !Number.isFinite(delay)) {
        throw new LockNotAcquiredError(key, opts.waitTimeout > 0 ? waited() : 0);
      }
      await abortableDelay(Math.min(Math.max(0, delay), remaining), opts.signal);
    }
  }

  /**
   * One `SET NX PX`. The lease counts from when the command was sent, so a reply that arrives
   * after the lease ran out is not a lock. An attempt given up on (deadline, abort, no answer)
   * releases what it may still set, so no orphan key blocks others for a whole ttl.
   */
  private async attempt(
    key: string,
    redisKey: string,
    opts: ResolvedLockOptions,
    deadline: number | undefined,
  ): Promise<RedisLockHandle | 'busy' | 'deadline' | 'aborted'> {
    if (this.closed) throw new LockUnavailableError(key, 'the lock client was closed');
    const token = newLockToken();
    const sentAt = monotonicNow();
    const reply = this.redis.set(redisKey, token, 'PX', opts.ttl, 'NX');
    const answerTimeout = Math.min(opts.ttl, ATTEMPT_TIMEOUT);
    let outcome: Awaited<ReturnType<typeof raceAttempt<string | null>>>;
    try {
      // An attempt sent right at the deadline still gets a moment to be answered.
      const deadlineIn =
        deadline === undefined ? undefined : Math.max(0, deadline - sentAt) + FINAL_ATTEMPT_GRACE;
      outcome = await raceAttempt(reply, answerTimeout, deadlineIn, opts.signal);
    } catch (err) {
      throw new LockUnavailableError(key, err);
    }
    if (outcome.kind !== 'reply') {
      reply
        .then(async (r) => {
          if (r === 'OK') await this.releaseOrphan(redisKey, token);
        })
        .catch(() => undefined);
      if (outcome.kind === 'timeout') {
        throw new LockUnavailableError(key, attemptTimeoutMessage(answerTimeout));
      }
      return outcome.kind;
    }
    if (outcome.value !== 'OK') return 'busy';
    if (monotonicNow() - sentAt >= opts.ttl) {
      await this.releaseOrphan(redisKey, token);
      return 'busy';
    }
    const handle = new RedisLockHandle(
      this,
      key,
      redisKey,
      token,
      opts.ttl,
      sentAt,
      opts.autoRenew,
    );
    this.held.add(handle);
    return handle;
  }

  private async releaseOrphan(redisKey: string, token: string): Promise<void> {
    await LockScripts.release.run(this.redis, [redisKey], [token]).catch(() => undefined);
  }

  private redisKey(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
      throw new InvalidLockKeyError(invalidKeyMessage(key));
    }
    return this.keyPrefix + key;
  }
}
