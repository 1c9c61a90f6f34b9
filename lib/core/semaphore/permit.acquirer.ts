/** Takes semaphore permits: one attempt, then the lock's kind of waiting until one comes back. */
import { RenewalBatcher } from '../lease/renewal.batcher.js';
import { LockUnavailableError } from '../../errors/lock.errors.js';
import { PermitNotAcquiredError } from '../../errors/semaphore.errors.js';
import { ATTEMPT_TIMEOUT, FINAL_ATTEMPT_GRACE } from '../../redis-lock.constants.js';
import {
  attemptTimeoutMessage,
  CLIENT_CLOSED,
  NO_ANSWER_DURING_WAIT,
} from '../../redis-lock.messages.js';
import type { LockTarget } from '../keys/lock-target.js';
import { newLockToken } from '../keys/lock-token.js';
import { monotonicNow } from '../lease/monotonic-clock.js';
import type { LockHandleOwner, RedisLockHandle } from '../lease/redis-lock.handle.js';
import { LocalQueue, Wake } from '../waiting/lock-wait.js';
import { answerWithin, NoAnswerError, raceAttempt } from '../waiting/race-attempt.js';
import type { WakeUpSource } from '../waiting/wake-up-source.interface.js';
import type { ResolvedPermitOptions } from './permit-options.resolver.js';
import type { PermitStore } from './permit.store.js';
import { RedisPermitHandle } from './redis-permit.handle.js';

/** What the acquirer needs from the client it works for. */
export interface PermitOwner extends Omit<LockHandleOwner, 'store' | 'passOn'> {
  /** Starts tracking a permit it granted (drain and close cover it). */
  track(handle: RedisLockHandle): void;
}

/** One acquirePermit call, across its attempts. */
interface PermitCall {
  readonly target: LockTarget;
  readonly opts: ResolvedPermitOptions;
  /** One token for all attempts: a retry of an attempt granted unseen is granted that permit. */
  readonly token: string;
  readonly started: number;
  readonly deadline: number;
  /** Ms until the first holder's lease ends, as last seen, and when. */
  leaseSeen?: { readonly ms: number; readonly at: number };
}

/** A refusal: ms until the first holder's lease ends, when a permit comes back unreleased. */
type Full = { readonly firstLeaseEnds: number };

/**
 * Takes permits for a `RedisLockClient`, waiting as a lock's waiter does: only the first waiter
 * of this process for a key contends (behind it the others wait their turn here), it listens on
 * the semaphore's release channel before it tries again, and sleeps until a release message (or
 * the first holder's lease would have ended, a crashed holder sending none), never spinning;
 * without wake-ups it retries by the call's retry strategy.
 *
 * @example
 * const permit = await acquirer.acquire(semaphoreTarget('lock:', 'payments'), resolvedOptions);
 */
export class PermitAcquirer {
  private readonly handleOwner: LockHandleOwner;
  private readonly localQueues = new Map<string, LocalQueue>();
  /** Every waiter's doorbell, rung on close so no one sleeps through it. */
  private readonly waiting = new Set<Wake>();
  private closed = false;
  /** Monotonic time Redis last answered an attempt (a wait ends "busy", not "unavailable"). */
  private lastAnswerAt = -Infinity;

  constructor(
    private readonly owner: PermitOwner,
    private readonly store: PermitStore,
    private readonly wakeUps?: WakeUpSource,
  ) {
    this.handleOwner = {
      store,
      // Permits are renewed in their own batches: their store runs the semaphore's EXTEND.
      renewals: new RenewalBatcher(store),
      logger: owner.logger,
      ended: (handle) => owner.ended(handle),
      // A permit goes back to Redis on release: waiters of every process see it there.
      passOn: () => false,
    };
  }

  /** Ends every wait (each fails as the client is closed) and grants no new permits. */
  close(): void {
    this.closed = true;
    for (const wake of this.waiting) wake.ring();
  }

  /**
   * A permit of `target` within `opts.permits`, waiting up to `opts.waitTimeout`.
   * @throws PermitNotAcquiredError, LockUnavailableError.
   */
  async acquire(target: LockTarget, opts: ResolvedPermitOptions): Promise<RedisPermitHandle> {
    const started = monotonicNow();
    const call: PermitCall = {
      target,
      opts,
      token: newLockToken(),
      started,
      deadline: started + opts.waitTimeout,
    };
    if (opts.signal?.aborted) throw this.notAcquired(call, true);
    // Others of this process wait for this key already: all permits were taken a moment ago.
    if (!this.localQueues.has(target.id) || opts.waitTimeout === 0) {
      const first = await this.attempt(call);
      if (first instanceof RedisPermitHandle) return first;
      if (first === 'aborted') throw this.notAcquired(call, true);
      if (first === 'deadline' || opts.waitTimeout === 0) throw this.timedOut(call);
    }
    return this.waitInLine(call);
  }

  /** Waits behind this process's earlier waiters for the key, then contends. */
  private async waitInLine(call: PermitCall): Promise<RedisPermitHandle> {
    const { target, opts } = call;
    let queue = this.localQueues.get(target.id);
    if (!queue) {
      const created = new LocalQueue(() => {
        if (this.localQueues.get(target.id) === created) this.localQueues.delete(target.id);
      });
      this.localQueues.set(target.id, (queue = created));
    }
    const place = queue.join();
    try {
      const wake = new Wake();
      void place.turn.then(() => wake.ring());
      const outcome = await this.sleep(wake, call.deadline - monotonicNow(), opts.signal);
      if (outcome === 'aborted') throw this.notAcquired(call, true);
      if (outcome !== 'woken') throw this.timedOut(call);
      return await this.contend(call);
    } finally {
      place.leave();
    }
  }

  /**
   * Subscribes, then tries, then sleeps until a release wakes it: a release between a refused
   * attempt and the subscription is not missed, as the attempt after subscribing sees it.
   */
  private async contend(call: PermitCall): Promise<RedisPermitHandle> {
    const { opts, target } = call;
    const wake = new Wake();
    let stopListening: (() => void) | undefined;
    if (this.wakeUps) {
      const timeout = Math.min(ATTEMPT_TIMEOUT, Math.max(1, call.deadline - monotonicNow()));
      // Without a subscription in time (reported by the hub) the wait polls by its strategy.
      stopListening = await this.wakeUps
        .listen(target.channels, () => wake.ring(), timeout)
        .catch(() => undefined);
    }
    try {
      for (let attempt = 1; ; attempt++) {
        wake.reset();
        const outcome = await this.attempt(call);
        if (outcome instanceof RedisPermitHandle) return outcome;
        if (outcome === 'aborted') throw this.notAcquired(call, true);
        const remaining = call.deadline - monotonicNow();
        if (outcome === 'deadline' || remaining <= 0) throw this.timedOut(call);
        // A crashed holder publishes nothing: look again when the first lease would have ended.
        const pause = stopListening ? outcome.firstLeaseEnds + 1 : opts.retry(attempt);
        if (pause === null || !Number.isFinite(pause)) throw this.timedOut(call);
        const woke = await this.sleep(wake, Math.min(Math.max(0, pause), remaining), opts.signal);
        if (woke === 'aborted') throw this.notAcquired(call, true);
      }
    } finally {
      stopListening?.();
    }
  }

  /**
   * One acquire script. As for locks, the lease counts from the send, so a reply that comes after
   * it ran out grants nothing, and an attempt given up on gives back what it may still be granted.
   */
  private async attempt(
    call: PermitCall,
  ): Promise<RedisPermitHandle | Full | 'deadline' | 'aborted'> {
    const { target, opts, token } = call;
    if (this.closed) throw new LockUnavailableError(target.name, CLIENT_CLOSED);
    const sentAt = monotonicNow();
    const reply = this.store.acquirePermit(target, token, opts.ttl, opts.permits);
    const answerTimeout = Math.max(Math.min(opts.ttl, ATTEMPT_TIMEOUT), this.store.maxAnswerTime);
    const deadlineIn =
      opts.waitTimeout > 0 ? Math.max(0, call.deadline - sentAt) + FINAL_ATTEMPT_GRACE : undefined;
    let granted: number;
    try {
      if (deadlineIn === undefined && !opts.signal) {
        // The common single try: only Redis not answering can end it early (a lighter race).
        granted = await answerWithin(reply, answerTimeout);
      } else {
        const outcome = await raceAttempt(reply, answerTimeout, deadlineIn, opts.signal);
        if (outcome.kind === 'timeout') {
          throw new NoAnswerError(attemptTimeoutMessage(answerTimeout));
        }
        if (outcome.kind !== 'reply') {
          this.releaseIfGrantedLate(call, reply);
          return outcome.kind;
        }
        granted = outcome.value;
      }
    } catch (err) {
      if (err instanceof NoAnswerError) this.releaseIfGrantedLate(call, reply);
      throw new LockUnavailableError(target.name, err);
    }
    return this.granted(call, granted, sentAt);
  }

  /** What an answered attempt means: a permit, or when the first holder's lease ends. */
  private async granted(
    call: PermitCall,
    granted: number,
    sentAt: number,
  ): Promise<RedisPermitHandle | Full> {
    const { target, opts, token } = call;
    this.lastAnswerAt = monotonicNow();
    if (granted < 0) {
      const firstLeaseEnds = -3 - granted;
      call.leaseSeen = { ms: firstLeaseEnds, at: this.lastAnswerAt };
      return { firstLeaseEnds };
    }
    if (this.closed) {
      // Granted after the client closed: nobody would release it at shutdown.
      await this.releaseOrphan(call);
      throw new LockUnavailableError(target.name, CLIENT_CLOSED);
    }
    const lease = this.store.lease(opts.ttl);
    if (monotonicNow() - sentAt >= lease) {
      await this.releaseOrphan(call);
      return { firstLeaseEnds: 0 };
    }
    const handle = new RedisPermitHandle(
      this.handleOwner,
      target,
      token,
      opts.ttl,
      sentAt,
      opts.autoRenew,
      lease,
      opts.permits,
    );
    this.owner.track(handle);
    return handle;
  }

  private releaseIfGrantedLate(call: PermitCall, reply: Promise<number>): void {
    reply
      .then(async (granted) => {
        if (granted > 0) await this.releaseOrphan(call);
      })
      .catch(() => undefined);
  }

  private async releaseOrphan({ target, token }: PermitCall): Promise<void> {
    await this.store.release(target, token).catch(() => false);
  }

  private notAcquired(call: PermitCall, aborted: boolean): PermitNotAcquiredError {
    const now = monotonicNow();
    const waited = call.opts.waitTimeout > 0 ? Math.round(now - call.started) : 0;
    const seen = call.leaseSeen;
    const leaseLeft = seen && Math.max(0, Math.round(seen.ms - (now - seen.at)));
    return new PermitNotAcquiredError(
      call.target.name,
      call.opts.permits,
      waited,
      aborted,
      leaseLeft,
    );
  }

  /** Busy, unless Redis answered nothing since the wait began: then it is unavailable. */
  private timedOut(call: PermitCall): PermitNotAcquiredError | LockUnavailableError {
    if (this.lastAnswerAt >= call.started) return this.notAcquired(call, false);
    return new LockUnavailableError(call.target.name, NO_ANSWER_DURING_WAIT);
  }

  private async sleep(wake: Wake, ms: number, signal?: AbortSignal) {
    this.waiting.add(wake);
    try {
      return await wake.wait(ms, signal);
    } finally {
      this.waiting.delete(wake);
    }
  }
}
