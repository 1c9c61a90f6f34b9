/* Locks on one Redis (also through Sentinel) or a Redis Cluster: the scripts, run per slot. */
import { hashSlot } from './cluster-slot.js';
import type { BusyKeyListener, LockStore, QueueSpot } from './lock-store.interface.js';
import { subTarget, type LockTarget } from '../keys/lock-target.js';
import { ClusterLockScripts, LockScripts, type LockScriptSet } from './scripts/index.js';
import { trustedLease } from '../lease/monotonic-clock.js';
import { isCluster, type RedisClient } from './redis-connection.js';
import {
  chunks,
  combined,
  extendBatch,
  type Renewal,
  type RenewalOutcome,
} from './lock-renewals.js';

/**
 * Locks on one Redis (also through Sentinel) or on a Redis Cluster: every operation is one Lua
 * script on the master that owns the lock's keys (one slot, thanks to the hash tag). A Cluster
 * lock on keys of several slots is taken one slot at a time, in a stable order, all or nothing.
 *
 * @example
 * const store = new RedisStore(new Redis());
 */
export class RedisStore implements LockStore {
  readonly supportsQueues = true;
  readonly maxAnswerTime = 0;
  /** Sharded pub/sub (SPUBLISH) on a Cluster, classic elsewhere. */
  private readonly scripts: LockScriptSet;
  private readonly cluster: boolean;

  constructor(readonly redis: RedisClient) {
    this.cluster = isCluster(redis);
    this.scripts = this.cluster ? ClusterLockScripts : LockScripts;
  }

  /**
   * The parts of a Cluster lock whose keys sit in different slots, in the order of their first
   * key (keys are sorted, so every caller takes the parts in the same order); one part on a
   * single Redis or when all keys share a slot.
   */
  slotParts(target: LockTarget): LockTarget[] {
    if (!this.cluster || target.locks.length < 2) return [target];
    const bySlot = new Map<number, number[]>();
    target.locks.forEach((lock, i) => {
      const slot = hashSlot(lock);
      const indices = bySlot.get(slot);
      if (indices) indices.push(i);
      else bySlot.set(slot, [i]);
    });
    if (bySlot.size === 1) return [target];
    return [...bySlot.values()].map((indices) => subTarget(target, indices));
  }

  lease(ttl: number): number {
    return trustedLease(ttl);
  }

  acquire(
    target: LockTarget,
    token: string,
    ttl: number,
    spot?: QueueSpot,
    onBusy?: BusyKeyListener,
  ): Promise<number> {
    const parts = this.slotParts(target);
    if (parts.length > 1) return this.acquireParts(parts, token, ttl, onBusy);
    if (spot === undefined) return this.acquireOne(target, token, ttl, onBusy);
    const { locks, fences, queues, timeouts } = target;
    const reply = this.scripts.acquireFair.run(
      this.redis,
      [...locks, ...fences, ...queues, ...timeouts],
      [token, ttl, spot.timeout],
    ) as Promise<number | [number, string | number]>;
    // Refused, the reply also names who is just ahead (one key) or the key in the way (several).
    return reply.then((r) => {
      if (typeof r === 'number') return r;
      if (locks.length > 1) onBusy?.(locks[(r[1] as number) - 1]);
      else spot.onQueued?.((r[1] as string) || undefined);
      return r[0];
    });
  }

  /** One ACQUIRE on keys of one slot; a refusal of several keys names the busy one. */
  private acquireOne(
    target: LockTarget,
    token: string,
    ttl: number,
    onBusy?: BusyKeyListener,
  ): Promise<number> {
    const reply = this.scripts.acquire.run(this.redis, target.acquireKeys, [token, ttl]) as Promise<
      number | [number, number]
    >;
    return reply.then((r) => {
      if (typeof r === 'number') {
        if (r < 0) onBusy?.(target.locks[0]);
        return r;
      }
      onBusy?.(target.locks[r[1] - 1]);
      return r[0];
    });
  }

  /**
   * One EXTEND per RENEWAL_BATCH locks on one Redis; on a Cluster, per slot, since a script's keys
   * must share one (a lock over several slots is renewed in each, and lost if any part refuses).
   */
  async extend(renewals: readonly Renewal[], timeout: number): Promise<RenewalOutcome[]> {
    const bySlot = new Map<number, { renewal: Renewal; lock: number }[]>();
    renewals.forEach((renewal, lock) => {
      for (const part of this.slotParts(renewal.target)) {
        const slot = this.cluster ? hashSlot(part.locks[0]) : 0;
        const group = bySlot.get(slot) ?? [];
        if (group.length === 0) bySlot.set(slot, group);
        group.push({
          renewal: part === renewal.target ? renewal : { ...renewal, target: part },
          lock,
        });
      }
    });
    const parts: RenewalOutcome[][] = renewals.map(() => []);
    const calls = [...bySlot.values()].flatMap((group) =>
      chunks(group).map(async (batch) => {
        const outcomes = await extendBatch(
          this.scripts.extend,
          this.redis,
          batch.map((entry) => entry.renewal),
          timeout,
        );
        outcomes.forEach((outcome, i) => parts[batch[i].lock].push(outcome));
      }),
    );
    await Promise.all(calls);
    return parts.map(combined);
  }

  /** Every release may hand over: waiters of either mode queue here (see LockStore). */
  release(target: LockTarget, token: string, passedTo: readonly string[] = []): Promise<boolean> {
    const parts = this.slotParts(target);
    if (parts.length > 1) {
      return Promise.all(parts.map((part) => this.release(part, token, passedTo))).then((held) =>
        held.every(Boolean),
      );
    }
    const n = target.locks.length;
    const args = [token, ...passedTo];
    return this.scripts.release.run(this.redis, target.releaseKeys, args).then((r) => r === n);
  }

  async leaveQueue(target: LockTarget, token: string): Promise<void> {
    await this.scripts.leaveQueue.run(this.redis, target.releaseKeys, [token]);
  }

  /**
   * Takes the slots one by one; the first busy one ends the attempt, and the parts already taken
   * are released (never holding some while waiting for others, so no deadlock). Those releases
   * publish on their keys' channels, where this waiter listens too: `onBusy` names the key that
   * was busy, and only its release may wake the waiter (docs/protocol.md, wake-ups). The fencing
   * token is the largest of the parts' (each slot has its own counters), and the counters of the
   * other parts are raised to it, so each key's next token is above it too.
   */
  private async acquireParts(
    parts: LockTarget[],
    token: string,
    ttl: number,
    onBusy?: BusyKeyListener,
  ): Promise<number> {
    const taken: LockTarget[] = [];
    let fence = 0;
    try {
      for (const part of parts) {
        const reply = await this.acquireOne(part, token, ttl, onBusy);
        if (reply < 0) {
          await Promise.all(taken.map((held) => this.release(held, token)));
          return reply;
        }
        taken.push(part);
        fence = Math.max(fence, reply);
      }
      const floor = String(fence);
      await Promise.all(
        parts.map((part) => this.scripts.raiseFence.run(this.redis, part.fences, [floor])),
      );
      return fence;
    } catch (err) {
      await Promise.all(taken.map((held) => this.release(held, token).catch(() => false)));
      throw err;
    }
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
