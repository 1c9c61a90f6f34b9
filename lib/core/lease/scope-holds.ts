/* The hold count of reentrant locks: a lock is released when the last scope holding it ends. */
import type { RedisLockHandle } from './redis-lock.handle.js';

/** What a scope is to the hold count: the lock it names, and whether it took it. */
interface Scope {
  readonly handle: RedisLockHandle;
  readonly owned: boolean;
}

/**
 * The hold count of reentrant locks (as in Redisson's reentrant lock): every open scope holds the
 * locks it took or joined, and a lock is released only when no scope holds it any more. A call
 * started inside a locked scope but not awaited by it (a timer, an event handler, `void
 * this.notify()`) joins the lock and may outlive the scope that took it: it keeps the lock until it
 * ends, so no other owner gets the lock while any of them still runs.
 *
 * @example
 * holds.hold([handle]);
 * const scope = holds.record({ handle, owned: true }, [handle]);
 * for (const free of holds.letGo(holds.end(scope) ?? [])) await free.release();
 */
export class ScopeHolds {
  /** How many open scopes (or scopes being entered) hold each lock; absent: none. */
  private readonly counts = new Map<RedisLockHandle, number>();
  /** The locks each open scope holds: its own, and those it joined. */
  private readonly open = new Map<Scope, readonly RedisLockHandle[]>();

  /** Counts one more holder of each of `handles` (a scope being entered). */
  hold(handles: readonly RedisLockHandle[]): void {
    for (const handle of handles) this.counts.set(handle, (this.counts.get(handle) ?? 0) + 1);
  }

  /** Counts one holder less of each of `handles`; returns those no one holds any more. */
  letGo(handles: readonly RedisLockHandle[]): RedisLockHandle[] {
    const free: RedisLockHandle[] = [];
    for (const handle of handles) {
      const left = (this.counts.get(handle) ?? 1) - 1;
      if (left > 0) this.counts.set(handle, left);
      else if (this.counts.delete(handle)) free.push(handle);
    }
    return free;
  }

  /** Records an entered scope and the locks it holds (already counted through `hold`). */
  record<S extends Scope>(scope: S, handles: readonly RedisLockHandle[]): S {
    this.open.set(scope, handles);
    return scope;
  }

  /**
   * Ends a scope: the locks it held, for `letGo`. `undefined` when it is not open: ended already
   * (an exit repeated by a teardown, say) or never recorded, so it is never counted down twice.
   */
  end(scope: Scope): readonly RedisLockHandle[] | undefined {
    const handles = this.open.get(scope);
    this.open.delete(scope);
    return handles;
  }

  /** Whether an open scope (or one being entered) still holds the lock. */
  isHeld(handle: RedisLockHandle): boolean {
    return this.counts.has(handle);
  }

  /** Forgets every scope: the client is closing and releases its locks itself. */
  clear(): void {
    this.counts.clear();
    this.open.clear();
  }
}
