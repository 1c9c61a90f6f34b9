/* Read-write locks on one Redis (also through Sentinel) or a Cluster: the LockStore their handles use. */
import { answerWithin } from '../waiting/race-attempt.js';
import type { Renewal, RenewalOutcome } from './lock-renewals.js';
import type { LockStore, QueueSpot } from './lock-store.interface.js';
import type { LockTarget } from '../keys/lock-target.js';
import type { RwLockTarget } from '../keys/rw-lock-target.js';
import { ClusterRwLockScripts, RwLockScripts, type RwLockScriptSet } from './rw-lock.scripts.js';
import { trustedLease } from '../lease/monotonic-clock.js';
import { isCluster, type RedisClient } from './redis-connection.js';

/**
 * The store of read-write locks, with the contract of `LockStore` so the lock client's waiting,
 * handles and watchdog work unchanged: an attempt answers a fencing token or a busy reply, a
 * release wakes waiters on the key's channel (and fair waiters on their client's). Every target it
 * is given is an `RwLockTarget` (one key, a mode). Nothing is ever handed over: a release only
 * wakes, and the waiter's own attempt takes the lock.
 *
 * @example
 * const store = new RwLockStore(new Redis(), 5_000);
 * const fence = await store.acquire(rwLockTarget('lock:', 'doc:1', 'read', false), token, 30_000);
 */
export class RwLockStore implements LockStore {
  readonly supportsQueues = true;
  readonly maxAnswerTime = 0;
  private readonly scripts: RwLockScriptSet;

  constructor(
    readonly redis: RedisClient,
    /** How long a waiting writer's spot lasts without a refresh (ms): the fair queue timeout. */
    private readonly writerSpot: number,
  ) {
    this.scripts = isCluster(redis) ? ClusterRwLockScripts : RwLockScripts;
  }

  lease(ttl: number): number {
    return trustedLease(ttl);
  }

  /**
   * A writer that waits (fair or not) keeps a spot among the writers waiting, refreshed by its
   * attempts, so readers stop entering; a single try keeps none.
   */
  async acquire(target: LockTarget, token: string, ttl: number, spot?: QueueSpot): Promise<number> {
    const { rwKeys, mode, waits } = target as RwLockTarget;
    const fair = spot !== undefined;
    const spotTimeout = spot?.timeout ?? (waits && mode === 'write' ? this.writerSpot : 0);
    const args = [token, ttl, member(mode, ''), spotTimeout, fair ? '1' : '0'];
    return (await this.scripts.acquire.run(this.redis, rwKeys, args)) as number;
  }

  /**
   * Renews each read-write lock with its own EXTEND script, all sent together; one outcome per
   * renewal, never a rejection (see `LockStore.extend`).
   */
  extend(renewals: readonly Renewal[], timeout: number): Promise<RenewalOutcome[]> {
    return Promise.all(
      renewals.map(({ target, token, ttl }) => {
        const { rwKeys, mode } = target as RwLockTarget;
        const reply = this.scripts.extend.run(this.redis, rwKeys, [member(mode, token), ttl]);
        return answerWithin(reply, timeout).then(
          (answer) => answer === 1,
          (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
        );
      }),
    );
  }

  async release(target: LockTarget, token: string): Promise<boolean> {
    const { rwKeys, mode } = target as RwLockTarget;
    const reply = await this.scripts.release.run(this.redis, rwKeys, [member(mode, token), token]);
    return reply === 1;
  }

  async leaveQueue(target: LockTarget, token: string): Promise<void> {
    await this.scripts.leave.run(this.redis, (target as RwLockTarget).rwKeys, [token]);
  }

  async isLocked(lockKey: string): Promise<boolean> {
    return (await this.redis.exists(lockKey)) === 1;
  }
}

/** A holder's member in the holders' sorted set: the side it holds, then its token. */
function member(mode: RwLockTarget['mode'], token: string): string {
  return (mode === 'write' ? 'W' : 'R') + token;
}
