/* Takes locks for a client: the first attempt, then the wait while the lock is busy. */
import { InvalidLockKeyError, LockUnavailableError } from '../../errors/lock.errors.js';
import { ATTEMPT_TIMEOUT, FINAL_ATTEMPT_GRACE } from '../../redis-lock.constants.js';
import {
  crossSlotMessage,
  FAIR_UNAVAILABLE_WARNING,
  LEASE_RAN_OUT_BEFORE_USE,
  notReplicatedMessage,
} from '../../redis-lock.messages.js';
import { monotonicNow } from '../lease/monotonic-clock.js';
import type { ResolvedLockOptions } from '../lock-options.resolver.js';
import type { LockStore } from '../redis/lock-store.interface.js';
import type { LockTarget } from '../keys/lock-target.js';
import { InProcessHandOver } from './in-process-hand-over.js';
import { BusyLockWaiter } from './busy-lock.waiter.js';
import { notAcquired, waitTimedOut } from './wait-errors.js';
import { newClientId, newLockToken } from '../keys/lock-token.js';
import { answerWithin } from './race-attempt.js';
import type { LockLogger, ReplicaWait } from '../redis-lock-client.options.js';
import { RedisLockHandle } from '../lease/redis-lock.handle.js';
import type { RedisStore } from '../redis/redis.store.js';
import type { WakeUpSource } from './wake-up-source.interface.js';
import type { AcquireCall } from './acquire-call.interface.js';
import { AcquireAttempts, type AttemptOwner } from './acquire-attempts.js';
import { PassRefusedError, PassTakeOver } from './pass-take-over.js';

/** How the acquisition reaches Redis and waits, fixed when the client is made. */
export interface AcquisitionSettings {
  readonly store: LockStore;
  /** The single Redis or Cluster store, when that is where locks live (queues, WAIT). */
  readonly redisStore?: RedisStore;
  /** Release wake-ups (pub/sub, or in memory); none when off or with Redlock. */
  readonly wakeUps?: WakeUpSource;
  readonly fairQueueTimeout: number;
  /** Times in a row a grant from Redis may be passed on in this process. */
  readonly maxLocalPasses: number;
  readonly waitForReplicas?: ReplicaWait;
  readonly logger: LockLogger;
  /**
   * Every waiter that gives up leaves its places in Redis, queued or not: a read-write lock's
   * waiting writer holds one in every mode (it keeps readers out).
   */
  readonly alwaysLeave?: boolean;
}

/**
 * Takes locks for a `RedisLockClient`: the first attempt (or a lock just released to a caller of
 * this process), then, while the lock is busy, `BusyLockWaiter`'s waiting; and the checks around
 * them (fair mode's single slot, replicas acknowledging a grant).
 *
 * @example
 * const handle = await acquisition.acquire(lockTarget('lock:', 'order:1'), resolvedOptions);
 */
export class LockAcquisition {
  /** Default mode: releases pass locks straight to the first of those waiters. */
  private readonly handOver: InProcessHandOver;
  /** Attempts and hand-overs in Redis turned into handles. */
  private readonly attempts: AcquireAttempts;
  /** Locks passed on in this process turned into handles. */
  private readonly passTakeOver: PassTakeOver;
  /** Everything a waiter does once its first attempt found the lock busy. */
  private readonly waiter: BusyLockWaiter;
  /** Starts every token of this client: a queued waiter is told its turn on its client's channel. */
  private readonly clientId = newClientId();
  private readonly store: LockStore;
  private readonly redisStore?: RedisStore;
  private readonly waitForReplicas?: ReplicaWait;
  private readonly logger: LockLogger;
  private readonly alwaysLeave: boolean;
  private fairUnavailableWarned = false;

  constructor(
    private readonly owner: AttemptOwner,
    settings: AcquisitionSettings,
  ) {
    const { wakeUps, fairQueueTimeout } = settings;
    ({
      store: this.store,
      redisStore: this.redisStore,
      waitForReplicas: this.waitForReplicas,
      logger: this.logger,
    } = settings);
    this.alwaysLeave = settings.alwaysLeave ?? false;
    this.handOver = new InProcessHandOver((target, lock) => {
      this.store.release(target, lock.token, lock.passedTo).catch(() => undefined);
    });
    this.attempts = new AcquireAttempts(owner, {
      store: this.store,
      handOver: this.handOver,
      fairQueueTimeout,
      maxLocalPasses: settings.maxLocalPasses,
      waitsForReplicas: !!this.waitForReplicas,
    });
    this.passTakeOver = new PassTakeOver(owner, this.attempts, {
      store: this.store,
      waitsForReplicas: !!this.waitForReplicas,
    });
    this.waiter = new BusyLockWaiter({
      attempts: this.attempts,
      passTakeOver: this.passTakeOver,
      handOver: this.handOver,
      redisStore: this.redisStore,
      wakeUps,
      fairQueueTimeout,
    });
  }

  /** Ends every wait (each fails as the client is closed) and takes no new locks. */
  close(): void {
    this.attempts.close();
    this.handOver.close();
    this.waiter.close();
  }

  /** A lock being released may go to a waiter of this process instead (see `InProcessHandOver`). */
  passOn(handle: RedisLockHandle, leaseEnds: number): boolean {
    return this.handOver.passOnRelease(handle, leaseEnds);
  }

  /** A lock was released or lost. */
  ended(handle: RedisLockHandle): void {
    this.handOver.holderEnded(handle);
  }

  /** Fair mode needs one copy of the queue: with Redlock, locks are granted as in default mode. */
  private fairUnavailable(): false {
    if (!this.fairUnavailableWarned) this.logger.warn(FAIR_UNAVAILABLE_WARNING);
    this.fairUnavailableWarned = true;
    return false;
  }

  /**
   * A fair lock's queues must move in one script: on a Cluster, its keys must share a slot
   * (a default-mode lock across slots is taken slot by slot instead).
   * @throws InvalidLockKeyError naming the keys when they hash to different slots.
   */
  private checkFairSlots(target: LockTarget, fair: boolean): void {
    if (fair && this.redisStore && this.redisStore.slotParts(target).length > 1) {
      throw new InvalidLockKeyError(crossSlotMessage(target.name));
    }
  }

  /**
   * Takes the lock on `target` with resolved options: one attempt, then (with a wait) the local
   * queue, wake-ups, the queue in Redis and hand-overs.
   * @throws LockNotAcquiredError, LockUnavailableError, InvalidLockKeyError.
   */
  acquire(target: LockTarget, opts: ResolvedLockOptions): Promise<RedisLockHandle> {
    if (opts.fair && !this.store.supportsQueues) opts.fair = this.fairUnavailable();
    this.checkFairSlots(target, opts.fair);
    const started = monotonicNow();
    const call: AcquireCall = {
      target,
      opts,
      // A waiter for several keys is never handed them one by one: ':m' tells the release.
      token: this.clientId + (target.keys.length > 1 ? `${newLockToken()}:m` : newLockToken()),
      started,
      deadline: started + opts.waitTimeout,
      answered: false,
      queued: opts.fair && opts.waitTimeout > 0,
    };
    if (opts.signal?.aborted) throw notAcquired(call, true);
    return this.obtain(call);
  }

  /**
   * `obtainOnce` until it brings a lock the caller may run on. The caller never runs on a lock
   * Redis refused to confirm (a pass whose key is gone: PassRefusedError), nor on one whose lease
   * ran out before it could be handed to the caller (replicas slow to acknowledge it, a pass whose
   * confirmation Redis did not answer): that is the last look at the lease before the caller
   * runs. Each time the waiter starts afresh within the same deadline, after leaving the places in
   * the queues it had (a hand-over to them passes on; sent first on the same connection, so Redis
   * runs it before the next attempt).
   */
  private async obtain(call: AcquireCall): Promise<RedisLockHandle> {
    for (;;) {
      let handle: RedisLockHandle;
      try {
        handle = await this.obtainOnce(call);
      } catch (err) {
        if (!(err instanceof PassRefusedError)) throw err;
        this.startAfresh(call);
        continue;
      }
      if (this.waitForReplicas) await this.confirmReplicated(handle, this.waitForReplicas);
      if (handle.isHeld()) return handle;
      // Not awaited (the release is bounded, and logs a failure): a frozen Redis must not hold
      // the caller past its deadline.
      void this.owner.discard(handle);
      if (monotonicNow() >= call.deadline) {
        throw new LockUnavailableError(call.target.name, LEASE_RAN_OUT_BEFORE_USE);
      }
      this.startAfresh(call);
    }
  }

  private startAfresh(call: AcquireCall): void {
    void this.attempts.leaveQueue(call);
    call.queued = call.opts.fair && call.opts.waitTimeout > 0;
  }

  private async obtainOnce(call: AcquireCall): Promise<RedisLockHandle> {
    const { target, opts } = call;
    // Released in this process a moment ago, with a waiter of ours in line: it is ours to take.
    const justReleased = opts.fair ? undefined : this.handOver.takeJustReleased(target.id);
    if (justReleased) return this.passTakeOver.takePassed(call, justReleased);
    const queue = !opts.fair && this.waiter.hasWaiters(target.id, false);
    // Fair waiters of this process queue for these keys already: an attempt now would only find
    // the lock busy, so this waiter subscribes and joins the queue with a single attempt.
    const contended = opts.fair && opts.waitTimeout > 0 && this.waiter.hasWaiters(target.id, true);
    if (contended) {
      // It cannot get the lock before those waiters, so its set-up waits for the next turn of the
      // event loop: what this turn runs already goes first, above all a waiter that a release of
      // this process just passed the lock to (typically this caller's own last release).
      await new Promise((resolve) => setImmediate(resolve));
      if (opts.signal?.aborted) throw notAcquired(call, true);
    }
    try {
      // Others of this process wait for these keys already: queue behind them, do not barge.
      if ((!queue && !contended) || opts.waitTimeout === 0) {
        const first = await this.attempts.attempt(call);
        if (first instanceof RedisLockHandle) return first;
        if (first === 'aborted') throw notAcquired(call, true);
        if (first === 'deadline' || opts.waitTimeout === 0) throw waitTimedOut(call, this.attempts);
      }
      return await this.waiter.waitForRelease(call);
    } catch (err) {
      // Gone from the queues when the caller learns it gave up; but a frozen Redis must not hold
      // it much past its deadline, so the answer is awaited only so long.
      if (call.queued || (this.alwaysLeave && opts.waitTimeout > 0)) {
        const left = Math.max(0, call.deadline - monotonicNow()) + FINAL_ATTEMPT_GRACE;
        await this.attempts.leaveQueue(call, Math.min(left, ATTEMPT_TIMEOUT));
      }
      throw err;
    }
  }

  /**
   * `WAIT` on the connection that wrote the grant: fails the acquire (and releases the lock)
   * unless enough replicas acknowledged it, so a failover right after it is less likely to lose
   * it. It covers every earlier write of this connection, so a hand-over (written by the
   * releaser) is covered by the extend this waiter sent after it.
   */
  private async confirmReplicated(handle: RedisLockHandle, { replicas, timeout }: ReplicaWait) {
    let acknowledged: number;
    try {
      const reply = this.redisStore!.replicasHaving(replicas, timeout);
      acknowledged = await answerWithin(reply, timeout + ATTEMPT_TIMEOUT);
    } catch (err) {
      await this.owner.discard(handle);
      throw new LockUnavailableError(handle.key, err);
    }
    if (acknowledged >= replicas) return;
    await this.owner.discard(handle);
    throw new LockUnavailableError(
      handle.key,
      notReplicatedMessage(acknowledged, replicas, timeout),
    );
  }
}
