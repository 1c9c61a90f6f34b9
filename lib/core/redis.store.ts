import type { LockStore } from './lock-store.interface.js';
import type { LockTarget } from './lock-target.js';
import { ClusterLockScripts, LockScripts, type LockScriptSet } from './lock.scripts.js';
import { isCluster, type RedisClient } from './redis-connection.js';

/**
 * Locks on one Redis (also through Sentinel) or on a Redis Cluster: every operation is one Lua
 * script on the master that owns the lock's keys (one slot, thanks to the hash tag).
 *
 * @example
 * const store = new RedisStore(new Redis(), 5_000);
 */
export class RedisStore implements LockStore {
  readonly coordinated = true;
  /** Sharded pub/sub (SPUBLISH) on a Cluster, classic elsewhere. */
  private readonly scripts: LockScriptSet;

  constructor(
    readonly redis: RedisClient,
    /** Lease a fair release gives the waiter it hands the lock to, which extends it (ms). */
    private readonly handOverLease: number,
  ) {
    this.scripts = isCluster(redis) ? ClusterLockScripts : LockScripts;
  }

  lease(ttl: number): number {
    return ttl;
  }

  acquire(target: LockTarget, token: string, ttl: number, spotTimeout?: number): Promise<number> {
    if (spotTimeout === undefined) {
      return this.scripts.acquire.run(this.redis, target.acquireKeys, [
        token,
        ttl,
      ]) as Promise<number>;
    }
    const { locks, fences, queues, timeouts } = target;
    return this.scripts.acquireFair.run(
      this.redis,
      [...locks, ...fences, ...queues, ...timeouts],
      [token, ttl, spotTimeout],
    ) as Promise<number>;
  }

  async extend(target: LockTarget, token: string, ttl: number): Promise<boolean> {
    return (await this.scripts.extend.run(this.redis, target.locks, [token, ttl])) === 1;
  }

  async release(target: LockTarget, token: string, fair: boolean): Promise<boolean> {
    const released = fair
      ? this.scripts.releaseFair.run(this.redis, target.releaseKeys, [token, this.handOverLease])
      : this.scripts.release.run(this.redis, target.locks, [token]);
    return (await released) === target.locks.length;
  }

  async leaveQueue(target: LockTarget, token: string): Promise<void> {
    await this.scripts.leaveQueue.run(this.redis, target.releaseKeys, [token, this.handOverLease]);
  }

  async isLocked(lockKey: string): Promise<boolean> {
    return (await this.redis.exists(lockKey)) === 1;
  }

  /**
   * How many replicas acknowledged every write this connection made so far (Redis `WAIT`):
   * called right after a grant, it tells whether the grant would survive a failover now.
   */
  replicasHaving(replicas: number, timeout: number): Promise<number> {
    return this.redis.call('WAIT', replicas, timeout) as Promise<number>;
  }
}
