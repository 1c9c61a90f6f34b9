/* A held lock's timers: the renewal the watchdog schedules and the expiry that declares a loss. */
import { RENEW_DIVISOR } from '../../redis-lock.constants.js';
import { monotonicNow } from './monotonic-clock.js';
import type { RenewalBatcher, RenewedLock } from './renewal.batcher.js';

/** Shortest pause between renewal retries while Redis is failing (milliseconds). */
const MIN_RENEW_RETRY = 25;

/** The lock a watchdog looks after, as it sees it. */
export interface WatchedLease extends RenewedLock {
  /** Lease in ms that renewals restore. */
  readonly ttl: number;
  /** ms until the lease runs out unless extended (as far as this process knows). */
  leaseLeft(): number;
  /** Whether the lock was released or lost already: its timers have nothing left to do. */
  hasEnded(): boolean;
  /** The lease ran out with no renewal: the lock is lost. */
  leaseRanOut(): void;
}

/**
 * The timers of one lock: its renewal, sent through the client's `RenewalBatcher`, and its expiry
 * timer, which declares the lock lost when the lease runs out unrenewed (Redis unreachable, or
 * no watchdog), so `signal` aborts on time.
 *
 * @example
 * const watchdog = new LeaseWatchdog(handle, client.renewals);
 * watchdog.armExpiry();
 * watchdog.scheduleRenewal();
 * watchdog.stop(); // released or lost
 */
export class LeaseWatchdog {
  private expiryTimer?: NodeJS.Timeout;

  constructor(
    private readonly lease: WatchedLease,
    private readonly renewals: RenewalBatcher,
  ) {}

  /** Whether an expiry timer was ever armed (it re-arms itself while the lease is extended). */
  get expiryArmed(): boolean {
    return this.expiryTimer !== undefined;
  }

  /**
   * Renews once a third of the ttl has passed on the lease the handle has (RENEW_DIVISOR), counted
   * from when that lease began: at once for a lease already shorter than two thirds of the ttl (a
   * grant or renewal whose reply was slow, a lock passed on with little left). `delay` overrides.
   * The batcher may send it a little earlier, with other locks' renewals, never later.
   */
  scheduleRenewal(
    delay = Math.max(0, this.lease.leaseLeft() - this.lease.ttl * (1 - 1 / RENEW_DIVISOR)),
  ): void {
    this.renewals.schedule(this.lease, monotonicNow() + delay);
  }

  /** Redis hiccup: keep trying while the lease lasts; the expiry timer declares the loss. */
  retryRenewal(): void {
    const remaining = this.lease.leaseLeft();
    this.scheduleRenewal(
      Math.max(MIN_RENEW_RETRY, Math.min(this.lease.ttl / RENEW_DIVISOR, remaining / 2)),
    );
  }

  /** Arms the expiry timer for the end of the lease, replacing the one armed before. */
  armExpiry(): void {
    clearTimeout(this.expiryTimer);
    const delay = Math.max(0, this.lease.leaseLeft());
    this.expiryTimer = setTimeout(() => {
      if (this.lease.hasEnded()) return;
      // Re-check: an extend may have landed while this timer was queued.
      if (this.lease.leaseLeft() > 0) return this.armExpiry();
      this.lease.leaseRanOut();
    }, delay).unref();
  }

  stop(): void {
    this.renewals.cancel(this.lease);
    clearTimeout(this.expiryTimer);
  }
}
