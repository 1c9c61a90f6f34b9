/* Takes up a lock passed on in this process: the waiter's handle, confirmed in Redis when needed. */
import { LockLostError, LockUnavailableError } from '../../errors/lock.errors.js';
import { FINAL_ATTEMPT_GRACE, LEASE_SHORTFALL } from '../../redis-lock.constants.js';
import { CLIENT_CLOSED } from '../../redis-lock.messages.js';
import type { AcquireCall } from './acquire-call.interface.js';
import type { PassedLock } from './in-process-hand-over.js';
import type { LockStore } from '../redis/lock-store.interface.js';
import { monotonicNow } from '../lease/monotonic-clock.js';
import { answerWithin, NoAnswerError } from './race-attempt.js';
import { RedisLockHandle } from '../lease/redis-lock.handle.js';
import type { AcquireAttempts, AttemptOwner } from './acquire-attempts.js';

/** A lock a waiter got without an attempt of its own, as `PassTakeOver.takeOver` takes it up. */
interface TakenLock {
  readonly token: string;
  readonly fencingToken: bigint;
  /** Monotonic time the lease counts from, and the lease (ms). */
  readonly since: number;
  readonly lease: number;
  readonly passesLeft: number;
  /** The lease the lock was last given in Redis, if longer than `lease` (a lock passed on). */
  readonly leaseGiven?: number;
  /** See `RedisLockHandle.passedTo`. */
  readonly passedTo?: readonly string[];
}

/**
 * A lock passed on in this process turned out to be gone in Redis when its taker confirmed it
 * (the key expired with a failover or restart, or another owner has it): the taker must not run
 * on it, and waits for the lock again (`LockAcquisition` catches this).
 */
export class PassRefusedError extends Error {}

/**
 * A lock taken up without an attempt: the handle itself when it needs nothing more, so the
 * waiter's caller goes on with no promise of ours in between; a promise when a command must come
 * first. Rejects only when the client was closed.
 */
export type TakenOver = RedisLockHandle | Promise<RedisLockHandle>;

/** What taking up a passed lock needs, fixed when the client is made. */
export interface TakeOverSettings {
  readonly store: LockStore;
  /** Set when grants must be acknowledged by replicas (a WAIT follows each). */
  readonly waitsForReplicas: boolean;
}

/**
 * A lock a release of this process passed to one of its waiters, made the waiter's handle: no
 * command on the way to the caller when enough lease is left, an EXTEND first when not.
 *
 * @example
 * const handle = await passTakeOver.takePassed(call, ticket.lock); // a PassRefusedError: wait again
 */
export class PassTakeOver {
  constructor(
    private readonly owner: AttemptOwner,
    private readonly attempts: AcquireAttempts,
    private readonly settings: TakeOverSettings,
  ) {}

  private get store(): LockStore {
    return this.settings.store;
  }

  /**
   * Takes up the lock a release of this process passed to this waiter. Its own place in the queue
   * in Redis goes with the lock's release (`RedisLockHandle.passedTo`): no command on the way to
   * the caller, and none is needed meanwhile, as nothing can hand the lock to that place while it
   * is held. `attempt`: this waiter's own attempt, still in flight (dropped) or with what it
   * brought back.
   */
  takePassed(call: AcquireCall, passed: PassedLock, attempt?: unknown): TakenOver {
    const passedTo = call.queued ? [...passed.passedTo, call.token] : passed.passedTo;
    call.queued = false;
    if (attempt instanceof Promise) this.dropAttempt(attempt);
    if (this.attempts.isClosed || attempt instanceof RedisLockHandle) {
      // The passed lease lapsed and the attempt took the keys anew (or the client was closed):
      // the passed token holds nothing, or must not be kept.
      void this.store.release(call.target, passed.token, passedTo).catch(() => undefined);
      if (attempt instanceof RedisLockHandle) return attempt;
      return Promise.reject(new LockUnavailableError(call.target.name, CLIENT_CLOSED));
    }
    const since = monotonicNow();
    return this.takeOver(call, { ...passed, since, lease: passed.leaseEnds - since, passedTo });
  }

  /** An attempt overtaken by a pass: a lock it still brings back (a lapsed lease) is released. */
  private dropAttempt(reply: Promise<unknown>): void {
    reply
      .then((outcome) => {
        if (outcome instanceof RedisLockHandle) {
          return this.owner.discard(outcome);
        }
      })
      .catch(() => undefined);
  }

  /**
   * A lock passed on to this waiter in this process, with `lease` ms counted from `since`. Brought
   * to the waiter's own ttl: by the watchdog, which renews on the lease left; else (no watchdog)
   * unless it is that already but for a few ms (a lock passed on by a holder with the same ttl).
   * At once, before the caller runs, when little of the lease is left: a refusal then means the
   * lock is gone in Redis (PassRefusedError), and the caller must not run on it. Otherwise while
   * the caller already works, since the lease it has is sound.
   */
  private takeOver(call: AcquireCall, lock: TakenLock): TakenOver {
    const { target, opts } = call;
    const { since, lease, leaseGiven = lease } = lock;
    const handle = new RedisLockHandle(
      this.owner,
      target,
      lock.token,
      lock.fencingToken,
      opts.ttl,
      since,
      opts.autoRenew,
      lease,
      lock.passesLeft,
      opts.fair ? call.token : undefined,
    );
    if (lock.passedTo) handle.passedTo = lock.passedTo;
    this.attempts.holding(handle, opts.fair);
    const leaseLeft = since + lease - monotonicNow();
    const fullLease = this.store.lease(opts.ttl);
    // With waitForReplicas, the WAIT that follows must come after a write of this connection.
    if (this.settings.waitsForReplicas || leaseLeft < Math.min(leaseGiven, fullLease) / 2) {
      const confirmed = handle.extend().then(
        () => handle,
        (err: unknown) => {
          if (err instanceof LockLostError) throw new PassRefusedError();
          // Redis did not answer: the lease it has is still sound; the watchdog tries again.
          return handle;
        },
      );
      // Awaited no longer than the wait's deadline (and the lease): a frozen Redis must not hold
      // the caller past it. Unanswered by then, the lock goes on with the lease it has (the
      // `LockAcquisition` looks at it last); a refusal that comes later shows as a loss, through `signal`.
      const left = Math.max(0, call.deadline - monotonicNow()) + FINAL_ATTEMPT_GRACE;
      return answerWithin(confirmed, Math.min(leaseLeft, left)).catch((err: unknown) => {
        if (err instanceof NoAnswerError) return handle;
        throw err;
      });
    }
    if (!opts.autoRenew && !nearly(leaseLeft, fullLease)) {
      // After the caller has started: sending the command is not for its critical path. A
      // failure shows through the handle: a lost lock aborts its signal, an unreachable Redis
      // leaves it the lease it got; released meanwhile, there is nothing to extend.
      setImmediate(() => {
        if (handle.isHeld()) handle.extend().catch(() => undefined);
      });
    }
    return handle;
  }
}

/**
 * Whether a lease left is a full lease but for at most LEASE_SHORTFALL of it: not worth a command
 * to bring it to the ttl. Never when it is longer: a lease longer than the ttl asked for would
 * keep the key from the others for longer than promised if the holder died.
 */
function nearly(leaseLeft: number, fullLease: number): boolean {
  return leaseLeft <= fullLease && leaseLeft >= fullLease * (1 - LEASE_SHORTFALL);
}
