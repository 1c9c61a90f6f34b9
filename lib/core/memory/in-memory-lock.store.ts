/** Locks held in this process's memory, with the semantics of the Lua scripts: for tests. */
import type { Renewal, RenewalOutcome } from '../redis/lock-renewals.js';
import { CLIENT_ID_BYTES, FENCE_RETENTION, FENCE_STRIDE } from '../../redis-lock.constants.js';
import { CHANNEL_SUFFIX, type LockTarget } from '../keys/lock-target.js';
import { trustedLease } from '../lease/monotonic-clock.js';
import type { LockStore, QueueSpot } from '../redis/lock-store.interface.js';
import { MemoryKeyspace } from './memory.keyspace.js';
import { MemoryChannels, MemoryWakeUps } from './memory.wake-ups.js';

/**
 * A lock store in this process's memory, for unit tests that should not need Redis. Every lock
 * client (or Nest app, through `RedisLockModule.forTest`) given the same store contends for the
 * same locks, as clients of one Redis do. It follows the Lua scripts of `redis/scripts/` step
 * for step (the Redis store is the reference, and the library's behavioural tests run against
 * both): leases that expire on the clock, owner tokens, fencing tokens rising per grant, fair
 * queues with hand-overs, all-or-nothing multi-key locks and release messages that wake
 * waiters. Each operation runs whole before it answers, as a script does.
 *
 * It is not a lock across processes: use Redis for that.
 *
 * @example
 * const store = new InMemoryLockStore();
 * const a = new RedisLockClient({ memory: store });
 * const b = new RedisLockClient({ memory: store });
 * await a.acquire('job'); // b.tryAcquire('job') now resolves null
 */
export class InMemoryLockStore implements LockStore {
  /** @internal one copy of every key: queues and wake-ups work as on one Redis. */
  readonly supportsQueues = true;
  /** @internal answers come at once. */
  readonly maxAnswerTime = 0;
  /** @internal its keys, which the library's own tests read as they read Redis. */
  readonly keys = new MemoryKeyspace();
  /** @internal its channels, likewise. */
  readonly channels = new MemoryChannels();

  /** @internal the wake-ups of one lock client on this store. */
  wakeUps(): MemoryWakeUps {
    return new MemoryWakeUps(this.channels);
  }

  /** @internal */
  lease(ttl: number): number {
    return trustedLease(ttl);
  }

  /** @internal ACQUIRE, or ACQUIRE_FAIR with a `spot`. */
  acquire(target: LockTarget, token: string, ttl: number, spot?: QueueSpot): Promise<number> {
    return Promise.resolve(
      spot ? this.acquireFair(target, token, ttl, spot) : this.take(target, token, ttl),
    );
  }

  /** @internal EXTEND, for a batch of locks: each renewed if its token still holds every key. */
  extend(renewals: readonly Renewal[]): Promise<RenewalOutcome[]> {
    return Promise.resolve(
      renewals.map(({ target, token, ttl }) => {
        const held = this.holdsAll(target, token);
        if (held) for (const lock of target.locks) this.keys.expire(lock, ttl);
        return held;
      }),
    );
  }

  /** @internal RELEASE: drops `passedTo` from the queues, then hands over or frees each key. */
  release(target: LockTarget, token: string, passedTo: readonly string[] = []): Promise<boolean> {
    for (const waiter of passedTo)
      for (const queue of target.queues) this.keys.dequeue(queue, waiter);
    let released = 0;
    target.locks.forEach((lock, i) => {
      if (this.keys.get(lock) !== token) return;
      this.handOver(target, i);
      released += 1;
    });
    return Promise.resolve(released === target.locks.length);
  }

  /** @internal LEAVE_QUEUE. */
  leaveQueue(target: LockTarget, token: string): Promise<void> {
    target.locks.forEach((lock, i) => {
      this.keys.dequeue(target.queues[i], token);
      if (this.keys.get(lock) === token) this.handOver(target, i);
      else if (this.keys.get(lock) === undefined) {
        const first = this.keys.waiters(target.queues[i])[0];
        if (first !== undefined) this.tellWaiter(lock, first);
      }
    });
    return Promise.resolve();
  }

  /** @internal */
  isLocked(lockKey: string): Promise<boolean> {
    return Promise.resolve(this.keys.get(lockKey) !== undefined);
  }

  /** Every key free: all are set, and the fencing token comes back; else -3 - PTTL of one busy. */
  private take(target: LockTarget, token: string, ttl: number): number {
    const busy = target.locks.find((lock) => this.keys.get(lock) !== undefined);
    if (busy !== undefined) return -3 - this.keys.pttl(busy);
    for (const lock of target.locks) this.keys.set(lock, token, ttl);
    return this.issueFence(target.fences);
  }

  private acquireFair(target: LockTarget, token: string, ttl: number, spot: QueueSpot): number {
    const { locks, queues } = target;
    if (this.holdsAll(target, token)) {
      // Handed over by a release: the token it issued, the lease counted from this attempt.
      for (const lock of locks) this.keys.expire(lock, ttl);
      const fence = Number(this.keys.get(target.fences[0]));
      return fence > 0 ? fence : this.issueFence(target.fences);
    }
    let blockedPttl: number | undefined;
    locks.forEach((lock, i) => {
      const pttl = this.keys.pttl(lock);
      const first = this.keys.waiters(queues[i])[0];
      // Free but promised to the first waiter, which may have missed its turn: remind it.
      if (pttl === -2 && first !== undefined && first !== token) this.tellWaiter(lock, first);
      const blocked = pttl !== -2 || (first !== undefined && first !== token);
      if (blocked && blockedPttl === undefined) blockedPttl = pttl;
    });
    if (blockedPttl === undefined) {
      locks.forEach((lock, i) => {
        this.keys.set(lock, token, ttl);
        this.keys.dequeue(queues[i], token);
      });
      return this.issueFence(target.fences);
    }
    if (spot.timeout > 0) {
      for (const queue of queues) this.keys.enqueue(queue, token, spot.timeout);
      if (locks.length === 1) {
        // Who is just ahead: the waiter before it, or the holder when it is first.
        const line = this.keys.waiters(queues[0]);
        const rank = line.indexOf(token);
        const ahead = rank > 0 ? line[rank - 1] : (this.keys.get(locks[0]) ?? '');
        spot.onQueued?.(ahead || undefined);
      }
    }
    return -3 - blockedPttl;
  }

  /**
   * HAND_OVER: key i (held by the releaser) goes to the first waiter queued for it, for what is
   * left of that waiter's place, with a new fencing token; a multi-key waiter (':m') is only told
   * to look again. With nobody queued, the key is freed and everyone on its channel is woken.
   */
  private handOver(target: LockTarget, i: number): void {
    const lock = target.locks[i];
    const queue = target.queues[i];
    const first = this.keys.waiters(queue)[0];
    if (first !== undefined && !first.endsWith(':m')) {
      this.keys.set(lock, first, this.keys.placeLeft(queue, first)!);
      this.keys.dequeue(queue, first);
      this.issueFence([target.fences[i]]);
      return this.tellWaiter(lock, first);
    }
    this.keys.delete(lock);
    if (first !== undefined) return this.tellWaiter(lock, first);
    this.channels.publish(lock + CHANNEL_SUFFIX, '');
  }

  /** TELL_WAITER: on the channel of the waiter's client, naming the waiter. */
  private tellWaiter(lock: string, waiter: string): void {
    const client = waiter.slice(0, 2 * CLIENT_ID_BYTES);
    this.channels.publish(`${lock}${CHANNEL_SUFFIX}:${client}`, waiter);
  }

  private holdsAll(target: LockTarget, token: string): boolean {
    return target.locks.every((lock) => this.keys.get(lock) === token);
  }

  /**
   * ISSUE_FENCE: one key steps its counter by FENCE_STRIDE; a new counter, or several keys, take
   * the clock in microseconds when it is above every counter + FENCE_STRIDE. Each counter is kept
   * FENCE_RETENTION ms past its last grant.
   */
  private issueFence(fences: readonly string[]): number {
    const top = Math.max(0, ...fences.map((fence) => Number(this.keys.get(fence) ?? 0)));
    let next = top + FENCE_STRIDE;
    if (fences.length > 1 || top === 0) next = Math.max(next, microsecondClock());
    for (const fence of fences) this.keys.set(fence, String(next), FENCE_RETENTION);
    return next;
  }
}

/** Microseconds since the epoch, as the scripts read Redis' TIME. */
function microsecondClock(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}
