/* One held lock: its token, its lease as this process counts it, its release and its loss. */
import { inspect } from 'node:util';
import { LockLostError, LockUnavailableError } from '../../errors/lock.errors.js';
import type { LockHandle } from '../../interfaces/lock-handle.interface.js';
import {
  LOST_LEASE_EXPIRED,
  LOST_RELEASED,
  LOST_TAKEN,
  LOST_UNREACHABLE,
  invalidExtendTtlMessage,
  lockLostWarning,
  timerDelayExpected,
} from '../../redis-lock.messages.js';
import { ATTEMPT_TIMEOUT, MAX_TIMER_DELAY } from '../../redis-lock.constants.js';
import { isTimerDelay } from './long-timeout.js';
import { monotonicNow } from './monotonic-clock.js';
import type { LockTarget } from '../keys/lock-target.js';
import type { RenewalOutcome } from '../redis/lock-renewals.js';
import { answerWithin } from '../waiting/race-attempt.js';
import type { LockHandleOwner } from './lock-handle-owner.interface.js';
import { LeaseWatchdog, type WatchedLease } from './lease.watchdog.js';
import { leaseController, releasedReason } from './lease.signal.js';
import { ObservedHold, type HoldObservation } from '../lock-observer.js';

export type { LockHandleOwner } from './lock-handle-owner.interface.js';

/**
 * One held lock: the token that proves ownership, the local lease clock, and the watchdog that
 * renews the lease while work runs. Created by `RedisLockClient`; users see it as `LockHandle`.
 *
 * @example
 * const lock = await client.acquire('invoice:42', { autoRenew: true });
 * try { await work(lock.signal); } finally { await lock.release(); }
 */
export class RedisLockHandle implements LockHandle, WatchedLease {
  /*
   * Made on first read of `signal`: most handles are released without anyone listening, and an
   * AbortController plus its abort on release is a measurable share of an uncontended lock.
   */
  private controller?: AbortController;
  /**
   * Monotonic time at which the lease runs out unless extended: the trusted lease (the store's
   * `lease`, a margin short of the ttl) counted from when the granting or extending command was
   * sent, so never after Redis expires the key.
   */
  private expiresAt: number;
  /** @internal The lease last set in Redis (ms): by the grant or the last extend. */
  leaseGiven: number;
  /**
   * @internal The queue places in Redis of the waiters this lock was passed to in a process on
   * its way here: they are not waiting any more, and the release drops them from the queue.
   */
  passedTo: readonly string[] = [];
  private releasing?: Promise<boolean>;
  private released = false;
  private lostError?: LockLostError;
  /** The renewal and expiry timers. */
  private readonly watchdog: LeaseWatchdog;
  /** Told of renewals and of the end of the hold, when an observer watches this lock. */
  private hold?: ObservedHold;
  /** Why the lock was lost, in words without the key (an observer may redact keys). */
  private lostWhy?: string;

  readonly key: string;
  readonly keys: readonly string[];

  constructor(
    private readonly owner: LockHandleOwner,
    /** The keys and their names in Redis. */
    readonly target: LockTarget,
    readonly token: string,
    readonly fencingToken: bigint,
    /** Lease in ms that renewals restore. */
    readonly ttl: number,
    /** Monotonic time the acquiring command was sent: the lease counts from then, not from the reply. */
    sentAt: number,
    /** Renewed by the watchdog; set later by `keepRenewing`. */
    private autoRenew: boolean,
    /** The lease granted, when not `ttl` (a hand-over, which `extend` then brings to `ttl`). */
    lease = ttl,
    /**
     * How many more times this lock may go straight to the next waiter of this process on release
     * before it goes back to Redis (0: never, as in fair mode).
     */
    readonly passesLeft = 0,
    /**
     * Fair mode: the place in the queue this lock came through (its taker's token). The waiter
     * that was just behind it is next, so a release may pass the lock to it in this process.
     */
    readonly queueToken?: string,
  ) {
    this.key = target.name;
    this.keys = target.keys;
    this.expiresAt = sentAt + lease;
    this.leaseGiven = lease;
    this.watchdog = new LeaseWatchdog(this, owner.renewals);
    if (autoRenew) {
      this.watchdog.armExpiry();
      this.watchdog.scheduleRenewal();
    }
  }

  /**
   * @internal Starts observing this hold (see `LockObserver`); one that already ended is ended
   * for the observer at once.
   */
  observe(hold: HoldObservation): void {
    this.hold = new ObservedHold(hold);
    if (this.lostError || this.released) this.hold.end(this.lostWhy);
  }

  /** The (first) lock key in Redis, with the prefix and hash tag. */
  get redisKey(): string {
    return this.target.locks[0];
  }

  /** @internal How long Redis may take to answer a renewal or release (ms). */
  get answerTimeout(): number {
    return Math.max(Math.min(this.ttl, ATTEMPT_TIMEOUT), this.owner.store.maxAnswerTime);
  }

  /**
   * Aborted when the lock is released or lost, and whenever `isHeld()` is false: reading
   * `aborted` (or calling `throwIfAborted()`) looks at the lease first, so a lease that ran out
   * while the event loop was blocked shows at once, not one timer phase later.
   */
  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = (this.controller = leaseController(() => this.isHeld()));
      if (this.lostError) controller.abort(this.lostError);
      else if (this.released) controller.abort(releasedReason(this.key));
      // Someone listens now: tell them when the lease runs out, watchdog or not.
      else this.watchdog.armExpiry();
    }
    return this.controller.signal;
  }

  /** @internal ms until the lease runs out unless extended (as far as this process knows). */
  leaseLeft(): number {
    return this.expiresAt - monotonicNow();
  }

  isHeld(): boolean {
    if (this.released || this.lostError) return false;
    if (monotonicNow() < this.expiresAt) return true;
    // The lease ran out before the expiry timer could say so (a blocked event loop): say it now.
    this.markLost(this.autoRenew ? LOST_UNREACHABLE : LOST_LEASE_EXPIRED);
    return false;
  }

  async extend(ttl: number = this.ttl): Promise<void> {
    if (!isTimerDelay(ttl)) {
      throw new RangeError(invalidExtendTtlMessage(ttl, timerDelayExpected(MAX_TIMER_DELAY)));
    }
    if (this.released) throw new LockLostError(this.key, LOST_RELEASED);
    if (this.lostError) throw this.lostError;
    const sentAt = monotonicNow();
    // The watchdog's script with a batch of one: one way to renew, however it is asked for.
    const renewal = { target: this.target, token: this.token, ttl };
    const [extended] = await this.owner.store.extend([renewal], this.answerTimeout);
    if (extended instanceof Error) throw new LockUnavailableError(this.key, extended);
    // A release that raced this extend deleted the key itself: that is not a loss.
    if (this.released) throw new LockLostError(this.key, LOST_RELEASED);
    // Declared lost while the reply was on its way: once lost, always lost.
    if (this.lostError) throw this.lostError;
    if (!extended) throw this.markLost(LOST_TAKEN);
    this.leaseExtended(sentAt, ttl);
  }

  /**
   * @internal The outcome of a watchdog renewal whose command was sent at `sentAt` or later, in
   * a batch with other locks' (see RenewalBatcher): only this lock's own result counts here.
   */
  renewed(sentAt: number, outcome: RenewalOutcome): void {
    if (this.released || this.lostError) return;
    if (outcome === false) {
      this.markLost(LOST_TAKEN);
    } else if (outcome === true) {
      this.leaseExtended(sentAt, this.ttl);
      this.watchdog.scheduleRenewal();
    } else {
      this.watchdog.retryRenewal();
    }
  }

  /** Redis set a lease of `ttl` by a command sent at `sentAt`: the local lease follows it. */
  private leaseExtended(sentAt: number, ttl: number): void {
    // PEXPIRE replaced the lease, even with a shorter one: the local clock must not outlast Redis.
    this.leaseGiven = this.owner.store.lease(ttl);
    const previous = this.expiresAt;
    this.expiresAt = sentAt + this.leaseGiven;
    this.hold?.renewed();
    if (!this.autoRenew && !this.controller) return;
    // A later end needs no new timer: the armed one re-arms itself when it finds the lease longer,
    // which saves a timer per lock and renewal when thousands are held.
    if (this.expiresAt < previous || !this.watchdog.expiryArmed) this.watchdog.armExpiry();
  }

  /**
   * @internal Renews from now until release, as if taken with the watchdog: the scope that took
   * the lock without it has ended, and reentrant calls it started still run under the lock.
   */
  keepRenewing(): void {
    if (this.autoRenew || !this.isHeld()) return;
    this.autoRenew = true;
    this.watchdog.armExpiry();
    // At once: the scope that ended may have used most of the lease.
    this.watchdog.scheduleRenewal(0);
  }

  release(): Promise<boolean> {
    if (!this.releasing) {
      // Set before anything runs: abort listeners called during the release must see it.
      this.released = true;
      this.releasing = this.releaseOnce();
    }
    return this.releasing;
  }

  /** Keeps tokens out of JSON (e.g. a handle returned from a controller by mistake). */
  toJSON(): { key: string; held: boolean; fencingToken: string } {
    return { key: this.key, held: this.isHeld(), fencingToken: this.fencingToken.toString() };
  }

  /** Keeps tokens out of `util.inspect` output, which is what logging an object prints. */
  [inspect.custom](): string {
    return (
      `RedisLockHandle { key: ${JSON.stringify(this.key)}, held: ${this.isHeld()}, ` +
      `fencingToken: ${this.fencingToken}n }`
    );
  }

  private async releaseOnce(): Promise<boolean> {
    this.stopTimers();
    this.owner.ended(this);
    // Without the expiry timer (no watchdog, no listener) a lapsed lease is noticed here.
    const lapsed = !this.lostError && monotonicNow() >= this.expiresAt;
    if (lapsed) this.owner.logger.warn(lockLostWarning(this.key, LOST_LEASE_EXPIRED));
    this.hold?.end(lapsed ? LOST_LEASE_EXPIRED : undefined);
    if (this.controller && !this.controller.signal.aborted) {
      this.controller.abort(releasedReason(this.key));
    }
    /*
     * One answer whichever way the lock leaves (see `LockHandle.release`): true only if it was held
     * up to now. Passed on, the lock is that process's view of it (no round trip to ask Redis);
     * released in Redis, Redis must also find this token on every key.
     */
    const held = !this.lostError && !lapsed;
    // A waiter of this process takes the lock over as it stands in Redis: no round trip.
    if (held && this.passesLeft > 0 && this.owner.passOn(this, this.expiresAt)) return true;
    let released: boolean;
    try {
      const reply = this.owner.store.release(this.target, this.token, this.passedTo);
      released = await answerWithin(reply, this.answerTimeout);
    } catch (err) {
      throw new LockUnavailableError(this.key, err);
    }
    // Lost, or its lease ran out, before the release: not held until now, whatever Redis found
    // (the key may outlive the lease the process trusted by the drift margin).
    return held && released;
  }

  /** @internal whether the lock was released or lost already. */
  hasEnded(): boolean {
    return this.released || !!this.lostError;
  }

  /** @internal the expiry timer found the lease run out, unrenewed. */
  leaseRanOut(): void {
    this.markLost(this.autoRenew ? LOST_UNREACHABLE : LOST_LEASE_EXPIRED);
  }

  /** Records the loss once, tells listeners and the log; returns the error to throw. */
  private markLost(why: string): LockLostError {
    if (this.lostError || this.released) return this.lostError ?? new LockLostError(this.key, why);
    this.lostError = new LockLostError(this.key, why);
    this.lostWhy = why;
    this.stopTimers();
    this.owner.ended(this);
    this.hold?.end(why);
    this.owner.logger.warn(lockLostWarning(this.key, why));
    this.controller?.abort(this.lostError);
    return this.lostError;
  }

  private stopTimers(): void {
    this.watchdog.stop();
  }
}
