/* A waiter's own acquire attempts: one script each, and what its reply means. */
import { LockUnavailableError } from '../../errors/lock.errors.js';
import { ATTEMPT_TIMEOUT, FINAL_ATTEMPT_GRACE } from '../../redis-lock.constants.js';
import { attemptTimeoutMessage, CLIENT_CLOSED } from '../../redis-lock.messages.js';
import type { AcquireCall, Busy } from './acquire-call.interface.js';
import type { InProcessHandOver } from './in-process-hand-over.js';
import type { BusyKeyListener, LockStore } from '../redis/lock-store.interface.js';
import { busyPttl } from '../redis/scripts/index.js';
import { monotonicNow } from '../lease/monotonic-clock.js';
import { answerWithin, NoAnswerError, raceAttempt } from './race-attempt.js';
import { RedisLockHandle } from '../lease/redis-lock.handle.js';
import type { LockHandleOwner } from '../lease/lock-handle-owner.interface.js';

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
 * A waiter's own acquire attempts, and the locks they bring: granted, or handed over in Redis. Owns the lease arithmetic, and the clean-up of attempts given up on
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

  /** Whether `close` was called. */
  get isClosed(): boolean {
    return this.closed;
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

  /** @internal every lock granted goes through here (a lock passed on too). */
  holding(handle: RedisLockHandle, fair: boolean): RedisLockHandle {
    this.owner.track(handle);
    if (!fair) this.settings.handOver.recordHolder(handle);
    return handle;
  }
}
