import { LockLostError, LockUnavailableError } from '../../errors/lock.errors.js';
import {
  ATTEMPT_TIMEOUT,
  FINAL_ATTEMPT_GRACE,
  LEASE_SHORTFALL,
} from '../../redis-lock.constants.js';
import { attemptTimeoutMessage, CLIENT_CLOSED } from '../../redis-lock.messages.js';
import type { AcquireCall, Busy } from './acquire-call.interface.js';
import type { InProcessHandOver, PassedLock } from './in-process-hand-over.js';
import type { BusyKeyListener, LockStore } from '../redis/lock-store.interface.js';
import { busyPttl } from '../redis/scripts/index.js';
import { monotonicNow } from '../lease/monotonic-clock.js';
import { answerWithin, NoAnswerError, raceAttempt } from './race-attempt.js';
import { RedisLockHandle } from '../lease/redis-lock.handle.js';
import type { LockHandleOwner } from '../lease/lock-handle-owner.interface.js';

/** A lock a waiter got without an attempt of its own, as `AcquireAttempts.takeOver` takes it up. */
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

/** What granting needs from the client it works for. */
export interface AttemptOwner extends LockHandleOwner {
  /** Starts tracking a handle it granted (close releases it). */
  track(handle: RedisLockHandle): void;
  /** Releases a handle no scope holds yet, logging a failure. */
  discard(handle: RedisLockHandle): Promise<void>;
}

/** How attempts reach Redis, fixed when the client is made. */
export interface AttemptSettings {
  readonly store: LockStore;
  /** Default-mode locks are recorded there, so the process's waiters wait for them. */
  readonly handOver: InProcessHandOver;
  readonly fairQueueTimeout: number;
  /** Times in a row a grant from Redis may be passed on in this process. */
  readonly maxLocalPasses: number;
  /** Set when grants must be acknowledged by replicas (a WAIT follows each). */
  readonly waitsForReplicas: boolean;
}

/**
 * Where a waiter's handle comes from: its own acquire attempts, a hand-over in Redis, or a lock
 * passed on in this process. Owns the lease arithmetic, and the clean-up of attempts given up on
 * (a late grant is released, so no orphan key blocks others for a whole ttl). `LockAcquisition`
 * decides when to try; this decides what a reply means.
 *
 * @example
 * const outcome = await attempts.attempt(call); // a RedisLockHandle, a Busy reply, 'deadline' or 'aborted'
 */
export class AcquireAttempts {
  private closed = false;
  /** Monotonic time Redis last answered an attempt of this client (see `answeredSince`). */
  private lastAnswerAt = -Infinity;

  constructor(
    private readonly owner: AttemptOwner,
    private readonly settings: AttemptSettings,
  ) {}

  private get store(): LockStore {
    return this.settings.store;
  }

  /** Whether Redis answered any attempt of this client at or after `since` (monotonic ms). */
  answeredSince(since: number): boolean {
    return this.lastAnswerAt >= since;
  }

  /** Tries no more: an attempt from now on fails as the client is closed. */
  close(): void {
    this.closed = true;
  }

  /**
   * One acquire script. The lease counts from when it was sent, so a reply that arrives after the
   * lease ran out is not a lock. An attempt given up on (deadline, abort, no answer) releases
   * what it may still be granted, so no orphan key blocks others for a whole ttl.
   */
  async attempt(call: AcquireCall): Promise<RedisLockHandle | Busy | 'deadline' | 'aborted'> {
    const { target, opts, token } = call;
    if (this.closed) throw new LockUnavailableError(target.name, CLIENT_CLOSED);
    const sentAt = monotonicNow();
    // The key a refusal found busy: only its release may wake the waiter (not the release of a
    // key it took and gave back, on a Cluster, nor of a key it does not wait for).
    let busyLock: string | undefined;
    const reply = this.runAcquireScript(call, (lock) => (busyLock = lock));
    const answerTimeout = Math.max(Math.min(opts.ttl, ATTEMPT_TIMEOUT), this.store.maxAnswerTime);
    // An attempt sent right at the deadline still gets a moment to be answered.
    const deadlineIn =
      opts.waitTimeout > 0 ? Math.max(0, call.deadline - sentAt) + FINAL_ATTEMPT_GRACE : undefined;
    let fence: number;
    try {
      if (deadlineIn === undefined && !opts.signal) {
        // The common single try: only Redis not answering can end it early (a lighter race).
        fence = (await answerWithin(reply, answerTimeout)) as number;
      } else {
        const outcome = await raceAttempt(reply, answerTimeout, deadlineIn, opts.signal);
        if (outcome.kind === 'timeout') {
          throw new NoAnswerError(attemptTimeoutMessage(answerTimeout));
        }
        if (outcome.kind !== 'reply') {
          this.releaseIfGrantedLate(call, reply);
          return outcome.kind;
        }
        fence = outcome.value as number;
      }
    } catch (err) {
      if (err instanceof NoAnswerError) this.releaseIfGrantedLate(call, reply);
      throw new LockUnavailableError(target.name, err);
    }
    call.answered = true;
    this.lastAnswerAt = monotonicNow();
    if (fence < 0) {
      const pttl = busyPttl(fence);
      // Free to read: the busy reply carries the PTTL, so a refusal can say when to come back.
      call.leaseSeen = pttl >= 0 ? { ms: pttl, at: this.lastAnswerAt } : undefined;
      return { pttl, lock: busyLock };
    }
    if (this.closed) {
      // Sent before the client closed (or began to drain), granted after: nobody tracks it for
      // the shutdown any more, so it must not be used.
      await this.releaseOrphan(call);
      throw new LockUnavailableError(target.name, CLIENT_CLOSED);
    }
    // Redlock trusts a grant for less than its ttl (clock drift between the masters).
    const lease = this.store.lease(opts.ttl);
    if (monotonicNow() - sentAt >= lease) {
      await this.releaseOrphan(call);
      return { pttl: 0 };
    }
    const handle = new RedisLockHandle(
      this.owner,
      target,
      token,
      BigInt(fence),
      opts.ttl,
      sentAt,
      opts.autoRenew,
      lease,
      this.settings.maxLocalPasses,
      opts.fair ? token : undefined,
    );
    return this.holding(handle, opts.fair);
  }

  /** An attempt given up on may still be granted: release it then, so it blocks nobody. */
  private releaseIfGrantedLate(call: AcquireCall, reply: Promise<number>): void {
    reply
      .then(async (fence) => {
        if (fence > 0) await this.releaseOrphan(call);
      })
      .catch(() => undefined);
  }

  private runAcquireScript(call: AcquireCall, onBusy: BusyKeyListener) {
    const { target, opts, token, deadline, started, queued } = call;
    // The default mode's first attempt may take a free lock whoever waits (barging).
    if (!opts.fair && !queued)
      return this.store.acquire(target, token, opts.ttl, undefined, onBusy);
    const waits = deadline > started;
    const spot = {
      // A single try takes no place in the queues.
      timeout: waits ? this.settings.fairQueueTimeout : 0,
      onQueued: (ahead: string | undefined) => {
        if (ahead !== undefined) call.ahead = ahead;
      },
    };
    return this.store.acquire(target, token, opts.ttl, spot, onBusy);
  }

  /**
   * A waiter queued in Redis that gives up (or was passed the lock in this process) leaves the
   * queues at once, rather than after its spot timeout.
   */
  async leaveQueue({ target, token }: AcquireCall, within = ATTEMPT_TIMEOUT): Promise<void> {
    await answerWithin(this.store.leaveQueue(target, token), within).catch(() => undefined);
  }

  /** Releases what an attempt given up on may have been granted. */
  private async releaseOrphan({ target, token }: AcquireCall) {
    await this.store.release(target, token).catch(() => undefined);
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
    if (this.closed || attempt instanceof RedisLockHandle) {
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
    this.holding(handle, opts.fair);
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

  /** Every lock granted goes through here. */
  private holding(handle: RedisLockHandle, fair: boolean): RedisLockHandle {
    this.owner.track(handle);
    if (!fair) this.settings.handOver.recordHolder(handle);
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
