/* One acquire call as it goes through its attempts: target, options, token, deadline. */
import type { ResolvedLockOptions } from '../lock-options.resolver.js';
import type { LockTarget } from '../keys/lock-target.js';

/** One acquire call, across its attempts. */
export interface AcquireCall {
  readonly target: LockTarget;
  readonly opts: ResolvedLockOptions;
  /**
   * One token for all attempts: in fair mode it is also the waiter's place in the queues (with
   * ':m' for several keys, which a release must not hand over one by one).
   */
  readonly token: string;
  readonly started: number;
  /** Monotonic time the wait ends (equal to `started` for a single attempt). */
  readonly deadline: number;
  /**
   * Whether Redis answered an attempt of this call, or the lock was seen held in this process: a
   * wait that ends without either failed because Redis did not answer, not because the lock was
   * busy (`LockUnavailableError`, not `LockNotAcquiredError`).
   */
  answered: boolean;
  /**
   * Waits in the key's queue in Redis, and is handed the lock by a release: every fair waiter,
   * and in the default mode the first waiter of each process (so processes take turns).
   */
  queued: boolean;
  /**
   * Fair mode, one key: who was last seen just ahead of this waiter: the waiter before it in the
   * queue or, when it is first, the holder. Kept when a later attempt names nobody.
   */
  ahead?: string;
  /**
   * The holder's lease left as last seen (Redis' PTTL in a busy reply, or a holder in this
   * process) and the monotonic time it was seen: what a refusal reports as `leaseLeftMs`.
   */
  leaseSeen?: { readonly ms: number; readonly at: number };
}

/** A busy reply: the remaining lease of the key in the way (-2: free, but not our turn yet). */
export interface Busy {
  readonly pttl: number;
  /** That key's lock key, when the store tells: only its release wakes the waiter. */
  readonly lock?: string;
}
