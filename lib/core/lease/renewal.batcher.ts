/** Sends the watchdog's renewals of one client in batches: one timer, one EXTEND per 100 locks. */
import { RENEW_EARLY_DIVISOR, RENEWAL_SLICE } from '../../redis-lock.constants.js';
import type { Renewal, RenewalOutcome } from '../redis/lock-renewals.js';
import type { LockStore } from '../redis/lock-store.interface.js';
import { monotonicNow } from './monotonic-clock.js';

/** A lock the watchdog renews: what to renew, and who learns the outcome. */
export interface RenewedLock extends Renewal {
  /** How long Redis may take to answer its renewal (ms). */
  readonly answerTimeout: number;
  /** The outcome of its renewal, whose command was sent at `sentAt` (monotonic ms) or later. */
  renewed(sentAt: number, outcome: RenewalOutcome): void;
}

/**
 * Renews the locks of one client in batches. Each lock says when its renewal is due; one timer
 * fires at the earliest, and then every lock due within 1/RENEW_EARLY_DIVISOR of its own ttl is
 * renewed with it, in one `store.extend` (one EXTEND call per RENEWAL_BATCH locks per node). A
 * renewal may so go early, never late but for the slices ahead of it: the timer is armed for the
 * earliest due, a lock due later only joins an earlier batch, and a large batch leaves in slices
 * of RENEWAL_SLICE locks, one turn of the event loop apart (the requests this process serves wait
 * for one slice, not a whole round). Locks renewed together are due together again, so held locks
 * settle into few rounds. Each lock's new lease counts from the moment before the batch was sent.
 *
 * @example
 * const renewals = new RenewalBatcher(store);
 * renewals.schedule(handle, monotonicNow() + ttl / 3);
 * renewals.cancel(handle); // released or lost
 */
export class RenewalBatcher {
  /** Locks waiting for their renewal, with when it is due (monotonic ms). */
  private readonly due = new Map<RenewedLock, number>();
  private timer?: NodeJS.Timeout;
  /** When `timer` fires (Infinity: not armed). */
  private timerAt = Infinity;

  constructor(private readonly store: LockStore) {}

  /** Renews `lock` at `at` (monotonic ms) or a little earlier, replacing a renewal scheduled before. */
  schedule(lock: RenewedLock, at: number): void {
    this.due.set(lock, at);
    if (at < this.timerAt) this.arm(at);
  }

  /** Drops the renewal of `lock` (a reply on its way is still delivered: the lock ignores it). */
  cancel(lock: RenewedLock): void {
    if (!this.due.delete(lock) || this.due.size > 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    // unref: a renewal alone must not keep the process alive; the work it protects does.
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - monotonicNow())).unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = monotonicNow();
    const batch: RenewedLock[] = [];
    let next = Infinity;
    // One pass over the locks waiting, a few times per renewal period: cheaper than a timer each.
    for (const [lock, at] of this.due) {
      if (at <= now + lock.ttl / RENEW_EARLY_DIVISOR) {
        batch.push(lock);
        this.due.delete(lock);
      } else if (at < next) {
        next = at;
      }
    }
    if (next < Infinity) this.arm(next);
    if (batch.length > 0) void this.send(batch);
  }

  private async send(locks: RenewedLock[]): Promise<void> {
    const batch = locks.length > RENEWAL_SLICE ? locks.splice(0, RENEWAL_SLICE) : locks;
    if (batch !== locks) setImmediate(() => void this.send(locks));
    let timeout = Infinity;
    for (const lock of batch) timeout = Math.min(timeout, lock.answerTimeout);
    // Before the first call is written: every lease below counts from no later than its send.
    const sentAt = monotonicNow();
    let outcomes: RenewalOutcome[];
    try {
      outcomes = await this.store.extend(batch, timeout);
    } catch (err) {
      // Stores answer per lock and do not reject; should one, every lock here retries.
      outcomes = batch.map(() => err as Error);
    }
    batch.forEach((lock, i) => lock.renewed(sentAt, outcomes[i]));
  }
}
