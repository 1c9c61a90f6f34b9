/** Semaphores on an `InMemoryLockStore` (`RedisLockModule.forTest`), with the scripts' rules. */
import type { Renewal, RenewalOutcome } from '../redis/lock-renewals.js';
import { CHANNEL_SUFFIX, type LockTarget } from '../keys/lock-target.js';
import { monotonicNow, trustedLease } from '../lease/monotonic-clock.js';
import type { InMemoryLockStore } from '../memory/in-memory-lock.store.js';
import type { PermitStore } from './permit.store.js';

/** The holders of every semaphore of one in-memory store: key → token → lease end (monotonic). */
const semaphoresOf = new WeakMap<InMemoryLockStore, Map<string, Map<string, number>>>();

/**
 * `RedisPermitStore` in this process, for tests: the semaphores of one `InMemoryLockStore` are
 * shared by every client on it (two apps given one store contend for their permits), and releases
 * wake waiters on the store's channels. Leases count on this process's monotonic clock.
 *
 * @example
 * const store = new MemoryPermitStore(new InMemoryLockStore());
 */
export class MemoryPermitStore implements PermitStore {
  readonly supportsQueues = true;
  readonly maxAnswerTime = 0;
  private readonly semaphores: Map<string, Map<string, number>>;

  constructor(private readonly memory: InMemoryLockStore) {
    let semaphores = semaphoresOf.get(memory);
    if (!semaphores) semaphoresOf.set(memory, (semaphores = new Map()));
    this.semaphores = semaphores;
  }

  lease(ttl: number): number {
    return trustedLease(ttl);
  }

  /** The live holders of `key` (those whose lease ended dropped), as each script starts. */
  private holders(key: string, now: number): Map<string, number> {
    let holders = this.semaphores.get(key);
    if (!holders) this.semaphores.set(key, (holders = new Map()));
    for (const [token, until] of holders) if (until <= now) holders.delete(token);
    return holders;
  }

  acquirePermit(target: LockTarget, token: string, ttl: number, permits: number): Promise<number> {
    const now = monotonicNow();
    const holders = this.holders(target.locks[0], now);
    if (holders.has(token) || holders.size < permits) {
      holders.set(token, now + ttl);
      return Promise.resolve(1);
    }
    const first = Math.min(...holders.values());
    return Promise.resolve(-3 - Math.ceil(first - now));
  }

  extend(renewals: readonly Renewal[]): Promise<RenewalOutcome[]> {
    const now = monotonicNow();
    return Promise.resolve(
      renewals.map(({ target, token, ttl }) => {
        const holders = this.holders(target.locks[0], now);
        if (!holders.has(token)) return false;
        holders.set(token, now + ttl);
        return true;
      }),
    );
  }

  release(target: LockTarget, token: string): Promise<boolean> {
    const key = target.locks[0];
    const holders = this.holders(key, monotonicNow());
    const held = holders.delete(token);
    if (holders.size === 0) this.semaphores.delete(key);
    if (held) this.memory.channels.publish(key + CHANNEL_SUFFIX, '');
    return Promise.resolve(held);
  }

  acquire(): Promise<number> {
    return Promise.reject(new Error('acquire is not a semaphore operation'));
  }

  leaveQueue(): Promise<void> {
    return Promise.resolve();
  }

  isLocked(key: string): Promise<boolean> {
    return Promise.resolve(this.holders(key, monotonicNow()).size > 0);
  }
}
