/** Where semaphores live: one Redis (also through Sentinel) or a Cluster, by the semaphore scripts. */
import type { LockTarget } from '../keys/lock-target.js';
import { trustedLease } from '../lease/monotonic-clock.js';
import type { Renewal, RenewalOutcome } from '../redis/lock-renewals.js';
import type { LockStore } from '../redis/lock-store.interface.js';
import { answerWithin } from '../waiting/race-attempt.js';
import { isCluster, type RedisClient } from '../redis/redis-connection.js';
import {
  ClusterSemaphoreScripts,
  SemaphoreScripts,
  type SemaphoreScriptSet,
} from '../redis/semaphore.scripts.js';

/**
 * A semaphore's side of the store: the handle of a permit renews and releases it through the
 * `LockStore` methods (`extend`, `release`, `lease`), so it keeps the lock handle's lease rules and
 * watchdog; `acquirePermit` takes it. Targets are `semaphoreTarget`s.
 *
 * @example
 * const granted = await store.acquirePermit(semaphoreTarget('lock:', 'payments'), token, 30_000, 5);
 */
export interface PermitStore extends LockStore {
  /**
   * One attempt: 1 when a permit is granted (fewer than `permits` live holders), else -3 minus the
   * ms until the first holder's lease ends.
   */
  acquirePermit(target: LockTarget, token: string, ttl: number, permits: number): Promise<number>;
}

/** The refusal for `LockStore` calls a permit never makes (it has no fencing token nor queue). */
const notForPermits = (what: string) =>
  Promise.reject(new Error(`${what} is not a semaphore operation`));

/**
 * Semaphores on one Redis (also through Sentinel) or a Redis Cluster: every operation is one
 * script on the master that owns the semaphore's key.
 *
 * @example
 * const store = new RedisPermitStore(new Redis());
 */
export class RedisPermitStore implements PermitStore {
  readonly supportsQueues = true;
  readonly maxAnswerTime = 0;
  private readonly scripts: SemaphoreScriptSet;

  constructor(readonly redis: RedisClient) {
    this.scripts = isCluster(redis) ? ClusterSemaphoreScripts : SemaphoreScripts;
  }

  lease(ttl: number): number {
    return trustedLease(ttl);
  }

  acquirePermit(target: LockTarget, token: string, ttl: number, permits: number): Promise<number> {
    return this.scripts.acquire.run(this.redis, target.locks, [
      token,
      ttl,
      permits,
    ]) as Promise<number>;
  }

  /**
   * Renews each permit with its own EXTEND script (a semaphore has few holders per process), all
   * sent together; one outcome per renewal, never a rejection (see `LockStore.extend`).
   */
  extend(renewals: readonly Renewal[], timeout: number): Promise<RenewalOutcome[]> {
    return Promise.all(
      renewals.map(({ target, token, ttl }) =>
        answerWithin(this.scripts.extend.run(this.redis, target.locks, [token, ttl]), timeout).then(
          (reply) => reply === 1,
          (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
        ),
      ),
    );
  }

  async release(target: LockTarget, token: string): Promise<boolean> {
    return (await this.scripts.release.run(this.redis, target.locks, [token])) === 1;
  }

  acquire(): Promise<number> {
    return notForPermits('acquire');
  }

  leaveQueue(): Promise<void> {
    return notForPermits('leaveQueue');
  }

  /** Whether the semaphore has a holder whose lease has not ended. */
  async isLocked(holdersKey: string): Promise<boolean> {
    const [seconds, micros] = (await this.redis.time()) as [string | number, string | number];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    return (await this.redis.zcount(holdersKey, `(${now}`, '+inf')) > 0;
  }
}
