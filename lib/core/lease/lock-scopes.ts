/* Reentrant scopes: the locks an async call chain holds, joined by calls made inside it. */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { LockOptions } from '../../interfaces/lock-options.interface.js';
import { lockTarget, type LockTarget } from '../keys/lock-target.js';
import { modeOf } from '../keys/rw-lock-target.js';
import { LockModeError } from '../../errors/lock-mode.error.js';
import { rwUpgradeMessage } from '../../redis-lock.messages.js';
import { RedisPermitHandle } from '../semaphore/redis-permit.handle.js';
import type { RedisLockHandle } from './redis-lock.handle.js';
import { ScopeHolds } from './scope-holds.js';

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

/** What scopes need from their lock client: taking a lock, and letting locks go. */
export interface ScopeLocking {
  acquire(target: LockTarget, options: LockOptions): Promise<RedisLockHandle>;
  /** A plain lock on the key(s), or a read-write lock's side with `options.mode`. */
  acquireKey(key: LockKeys, options: LockOptions): Promise<RedisLockHandle>;
  /** Releases each lock, logging a failure: the lease will expire anyway. */
  releaseAll(handles: readonly RedisLockHandle[]): Promise<void>;
  discard(handle: RedisLockHandle): Promise<void>;
}

/**
 * The scopes of one lock client (`enter`, `runInScope`, `exit`, hence `run`). One per client:
 * two Nest apps in one process never join each other's locks.
 *
 * @example
 * const scope = await scopes.enter('order:1', {});
 * try { await scopes.runInScope(scope, () => pay('1')); } finally { await scopes.exit(scope); }
 */
export class LockScopes {
  /** Which scopes hold which locks: reentrant locks are released by the last scope to exit. */
  private readonly holds = new ScopeHolds();
  private readonly context = new AsyncLocalStorage<HeldInContext>();

  constructor(
    private readonly keyPrefix: string,
    private readonly locking: ScopeLocking,
  ) {}

  /** See `RedisLockClient.enter`. */
  async enter(key: LockKeys, options: LockOptions): Promise<LockScope> {
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
      handle = await this.locking.acquire(target, {
        ...options,
        autoRenew: options.autoRenew ?? true,
      });
    } catch (err) {
      await this.locking.releaseAll(this.holds.letGo(joined));
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
    const handle = await this.locking.acquireKey(key, {
      ...options,
      autoRenew: options.autoRenew ?? true,
    });
    return this.enterTaken(handle);
  }

  /**
   * A scope owning a lock (or permit) just taken, which no other scope joined.
   *
   * @example
   * const scope = scopes.enterTaken(await client.acquirePermit('api', { permits: 5 }));
   */
  enterTaken(handle: RedisLockHandle): LockScope {
    this.holds.hold([handle]);
    return this.holds.record({ handle, owned: true }, [handle]);
  }

  /** See `RedisLockClient.runInScope`. */
  runInScope<T>(scope: LockScope, fn: () => T): T {
    // A permit is no lock: a reentrant lock call on the same key must not join it.
    if (!scope.owned || scope.handle instanceof RedisPermitHandle) return fn();
    const inner = new Map(this.context.getStore());
    for (const lockKey of scope.handle.target.locks) inner.set(lockKey, scope.handle);
    return this.context.run(inner, fn);
  }

  /** See `RedisLockClient.exit`. */
  async exit(scope: LockScope): Promise<void> {
    const handles = this.holds.end(scope);
    if (!handles) {
      // Ended before (or made outside `enter`): an owned lock is released if no one holds it.
      if (scope.owned && !this.holds.isHeld(scope.handle)) await this.locking.discard(scope.handle);
      return;
    }
    const free = this.holds.letGo(handles);
    if (scope.owned && this.holds.isHeld(scope.handle)) scope.handle.keepRenewing();
    await this.locking.releaseAll(free);
  }

  /** Scopes still open, joined ones included, hold nothing once the client is closed. */
  clear(): void {
    this.holds.clear();
  }
}
