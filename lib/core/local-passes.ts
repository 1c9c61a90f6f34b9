import { MIN_PASSED_LEASE } from '../redis-lock.constants.js';
import type { Wake } from './lock-wait.js';
import { monotonicNow } from './monotonic-clock.js';
import type { RedisLockHandle } from './redis-lock.handle.js';

/** A lock passed on inside the process: still held in Redis under the releaser's token. */
export interface PassedLock {
  readonly token: string;
  readonly fencingToken: bigint;
  /** Monotonic time its lease in Redis ends. */
  readonly leaseEnds: number;
  readonly passesLeft: number;
}

/** What a waiter tells `LocalPasses` about itself. */
export interface PassCandidate {
  /** Monotonic time the waiter gives up. */
  readonly deadline: number;
  readonly signal?: AbortSignal;
  /** Rung when a lock is passed to it, or when the lock it waits to be passed is gone. */
  readonly wake: Wake;
}

/** A waiter's standing with `LocalPasses`, from `candidate()`. */
export interface Candidacy {
  /** The lock passed to this waiter, once one was. */
  readonly lock: PassedLock | undefined;
  /** Resolves when a lock is passed to this waiter; for racing a command in flight. */
  readonly passed: Promise<'passed'>;
  /** Stops being offered locks (safe to repeat). */
  withdraw(): void;
}

/**
 * Default mode: hands a lock being released straight to the next waiter of the same process for
 * the same keys, as it stands in Redis (token, lease and keys), with the next fencing token. No
 * round trip, and above all no other process to wake: that costs far more than the command. A
 * grant from Redis may be passed on `MAX_LOCAL_PASSES` times before it goes back to Redis, where
 * the other processes' waiters are in line, so they still get their turns (a cohort lock).
 *
 * The numbers after a grant's fencing token are left free for these passes (`FENCE_STRIDE`).
 *
 * @example
 * const candidacy = passes.candidate(target.id, { deadline, signal, wake });
 * try { ...wait... if (candidacy.lock) return takeOver(candidacy.lock); } finally { candidacy.withdraw(); }
 */
export class LocalPasses {
  /** The first waiter of each local queue, by key set: the one a release passes to. */
  private readonly candidates = new Map<string, PassCandidate & { take(lock: PassedLock): void }>();
  /** Locks this process holds that can still be passed on, by key set. */
  private readonly holders = new Map<string, RedisLockHandle>();
  private closed = false;

  /** Passes nothing from now on: every release goes to Redis. */
  close(): void {
    this.closed = true;
  }

  /** Records a granted lock; one with passes left is where its waiters' turns come from. */
  granted(handle: RedisLockHandle): void {
    if (handle.passesLeft > 0) this.holders.set(handle.target.id, handle);
  }

  /**
   * While this process holds the keys and may pass them on, how long its lease lasts (ms): their
   * next waiter can wait that long for a pass instead of subscribing and queueing in Redis.
   * `undefined` otherwise, also once that lease ran out (a holder without a watchdog that never
   * let go): the waiter then contends in Redis, where the key has expired.
   */
  passWithin(id: string): number | undefined {
    const holder = this.closed ? undefined : this.holders.get(id);
    return holder?.isHeld() ? holder.leaseLeft() : undefined;
  }

  /** Makes a waiter the one a release of these keys passes to. */
  candidate(id: string, waiter: PassCandidate): Candidacy {
    let lock: PassedLock | undefined;
    let resolve!: (value: 'passed') => void;
    const passed = new Promise<'passed'>((r) => (resolve = r));
    const entry = {
      ...waiter,
      take: (given: PassedLock) => {
        lock = given;
        waiter.wake.ring();
        resolve('passed');
      },
    };
    this.candidates.set(id, entry);
    return {
      get lock() {
        return lock;
      },
      passed,
      withdraw: () => {
        if (this.candidates.get(id) === entry) this.candidates.delete(id);
      },
    };
  }

  /**
   * Offered a lock being released, whose lease in Redis ends at `leaseEnds`: passes it to the
   * keys' candidate if there is one that still wants it, and enough lease is left to be worth it.
   * @returns true when passed (nothing is to be released in Redis).
   */
  offer(handle: RedisLockHandle, leaseEnds: number): boolean {
    const id = handle.target.id;
    const next = this.candidates.get(id);
    if (!next || this.closed || handle.passesLeft <= 0 || next.signal?.aborted) return false;
    const now = monotonicNow();
    if (leaseEnds - now < MIN_PASSED_LEASE || now >= next.deadline) return false;
    // One pass per candidate: it stops being one as it takes the lock.
    this.candidates.delete(id);
    next.take({
      token: handle.token,
      fencingToken: handle.fencingToken + 1n,
      leaseEnds,
      passesLeft: handle.passesLeft - 1,
    });
    return true;
  }

  /**
   * A handle was released or lost (called before `offer`). The candidate waiting for it to be
   * passed on looks again: it takes the pass if one comes, else it contends in Redis.
   */
  settled(handle: RedisLockHandle): void {
    const id = handle.target.id;
    if (this.holders.get(id) !== handle) return;
    this.holders.delete(id);
    this.candidates.get(id)?.wake.ring();
  }
}
