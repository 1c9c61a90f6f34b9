/* Passing a released lock straight to a waiter of the same process, without a command. */
import { MIN_PASSED_LEASE } from '../../redis-lock.constants.js';
import type { LockTarget } from '../keys/lock-target.js';
import type { Wake } from './lock-wait.js';
import { monotonicNow } from '../lease/monotonic-clock.js';
import type { RedisLockHandle } from '../lease/redis-lock.handle.js';

/** A lock passed on inside the process: still held in Redis under the releaser's token. */
export interface PassedLock {
  readonly token: string;
  readonly fencingToken: bigint;
  /** Monotonic time its lease in Redis ends. */
  readonly leaseEnds: number;
  /** The lease it was last given in Redis (ms). */
  readonly leaseGiven: number;
  readonly passesLeft: number;
  /** The queue places of the waiters it was passed to before (see `RedisLockHandle.passedTo`). */
  readonly passedTo: readonly string[];
}

/** What a waiter tells `InProcessHandOver` about itself. */
export interface PassWaiter {
  /** Monotonic time the waiter gives up. */
  readonly deadline: number;
  readonly signal?: AbortSignal;
  /** Rung when a lock is passed to it, or when the lock it waits to be passed is gone. */
  readonly wake: Wake;
}

/** A waiter's standing with `InProcessHandOver`, from `registerFirstWaiter()`. */
export interface PassTicket {
  /** The lock passed to this waiter, once one was. */
  readonly lock: PassedLock | undefined;
  /** Resolves when a lock is passed to this waiter; for racing a command in flight. */
  readonly passed: Promise<'passed'>;
  /** Stops being passed locks (safe to repeat). */
  cancel(): void;
}

/** A waiter as a release sees it: `take` hands it the lock. */
type RegisteredWaiter = PassWaiter & { take(lock: PassedLock): void };

/** A lock released while a waiter of this process waited for it, until someone takes it. */
interface UnclaimedLock {
  readonly lock: PassedLock;
  readonly target: LockTarget;
}

/**
 * Default mode: hands a lock being released to another caller of the same process for the same
 * keys, as it stands in Redis (token, lease and keys), with the next fencing token. No round
 * trip, and above all no other process to wake: that costs far more than the command. A grant
 * from Redis may be passed on `maxLocalPasses` times before it goes back to Redis, where the
 * other processes' waiters are in line, so they still get their turns (a cohort lock).
 *
 * Who gets it: a caller that asks for the keys in the same turn of the event loop as the release
 * (typically the releasing caller, asking again), else the first waiter. That is the non-fair
 * mutex's trade, as in Go's `sync.Mutex`: the caller that is running takes the lock before a
 * sleeping waiter is woken, which serves more callers per second, and `maxLocalPasses` bounds it.
 *
 * Fair mode keeps strict arrival order, so only one pass is possible there: to the waiter that
 * is next in the queue in Redis, known when a waiter of this process stood right behind the
 * place the releasing lock came through (`registerNextInQueue`). It is passed at once, nobody may go first.
 *
 * The numbers after a grant's fencing token are left free for these passes (`FENCE_STRIDE`).
 *
 * @example
 * const handOver = new InProcessHandOver((target, lock) => store.release(target, lock.token, lock.passedTo));
 * const ticket = handOver.registerFirstWaiter(target.id, { deadline, signal, wake });
 * try { ...wait... if (ticket.lock) return takeOver(ticket.lock); } finally { ticket.cancel(); }
 */
export class InProcessHandOver {
  /** The first waiter of each local queue, by key set: the one a release passes to. */
  private readonly firstWaiters = new Map<string, RegisteredWaiter>();
  /**
   * Fair waiters of this process, by key set and the queue place (token) just ahead of theirs:
   * a lock on other keys coming through that place is not theirs to take.
   */
  private readonly nextInQueue = new Map<string, RegisteredWaiter>();
  /** Default-mode locks this process holds, by key set: its waiters wait for them to be let go. */
  private readonly holders = new Map<string, RedisLockHandle>();
  /** Locks released to this process's callers, until the end of the event loop's turn. */
  private readonly unclaimed = new Map<string, UnclaimedLock>();
  private closed = false;

  /** @param release Releases a lock in Redis that nobody here took after all. */
  constructor(private readonly release: (target: LockTarget, lock: PassedLock) => void) {}

  /** Passes nothing from now on: every release goes to Redis, and so do the unclaimed locks. */
  close(): void {
    this.closed = true;
    for (const { lock, target } of this.unclaimed.values()) this.release(target, lock);
    this.unclaimed.clear();
  }

  /** Records a granted default-mode lock: the first waiter waits for it to be let go. */
  recordHolder(handle: RedisLockHandle): void {
    this.holders.set(handle.target.id, handle);
  }

  /**
   * While this process holds the keys, how long its lease lasts (ms): their first waiter can wait
   * that long for the holder to let go (passing it the lock, or releasing it in Redis when no
   * passes are left) rather than subscribe and queue in Redis, where the process's next turn
   * would only come after the other processes' anyway. `undefined` otherwise, also once that
   * lease ran out (a holder without a watchdog that never let go): the waiter then contends in
   * Redis, where the key has expired.
   */
  holderLeaseLeft(id: string): number | undefined {
    if (this.closed) return undefined;
    const unclaimed = this.unclaimed.get(id);
    if (unclaimed) return unclaimed.lock.leaseEnds - monotonicNow();
    const holder = this.holders.get(id);
    return holder?.isHeld() ? holder.leaseLeft() : undefined;
  }

  /** A lock on these keys released in this turn of the event loop, for a caller now asking. */
  takeJustReleased(id: string): PassedLock | undefined {
    const unclaimed = this.unclaimed.get(id);
    if (!unclaimed || this.closed) return undefined;
    this.unclaimed.delete(id);
    return unclaimed.lock;
  }

  /** Makes a waiter the one a release of these keys passes to. */
  registerFirstWaiter(id: string, waiter: PassWaiter): PassTicket {
    return register(this.firstWaiters, id, waiter);
  }

  /**
   * Fair mode: makes a waiter the one a release passes to when the lock came through the queue
   * place `ahead` (the waiter just ahead of it, or the holder when it is first in the queue),
   * since its turn is next then.
   */
  registerNextInQueue(id: string, ahead: string, waiter: PassWaiter): PassTicket {
    return register(this.nextInQueue, `${id}\n${ahead}`, waiter);
  }

  /**
   * Called with a lock being released, whose lease in Redis ends at `leaseEnds`: passes it to the
   * keys' first waiter if there is one that still wants it, and enough lease is left to be worth it.
   * @returns true when passed (nothing is to be released in Redis).
   */
  passOnRelease(handle: RedisLockHandle, leaseEnds: number): boolean {
    if (this.closed || handle.passesLeft <= 0) return false;
    if (handle.queueToken !== undefined)
      return this.passInOrder(handle, handle.queueToken, leaseEnds);
    const id = handle.target.id;
    const next = this.firstWaiters.get(id);
    if (!next || !wants(next, leaseEnds)) return false;
    const unclaimed: UnclaimedLock = { target: handle.target, lock: passed(handle, leaseEnds) };
    // Callers asking before the next turn of the event loop take it first (see the class).
    this.unclaimed.set(id, unclaimed);
    setImmediate(() => this.giveToFirstWaiter(id, unclaimed));
    return true;
  }

  /** Fair mode: to the waiter right behind the place this lock came through, if it is ours. */
  private passInOrder(handle: RedisLockHandle, place: string, leaseEnds: number): boolean {
    const key = `${handle.target.id}\n${place}`;
    const next = this.nextInQueue.get(key);
    if (!next || !wants(next, leaseEnds)) return false;
    this.nextInQueue.delete(key);
    next.take(passed(handle, leaseEnds));
    return true;
  }

  /** Gives an unclaimed lock nobody took to the first waiter, or back to Redis if it left. */
  private giveToFirstWaiter(id: string, unclaimed: UnclaimedLock): void {
    if (this.unclaimed.get(id) !== unclaimed) return;
    this.unclaimed.delete(id);
    const next = this.firstWaiters.get(id);
    if (next && wants(next, unclaimed.lock.leaseEnds)) {
      // One pass per first waiter: it stops being one as it takes the lock.
      this.firstWaiters.delete(id);
      next.take(unclaimed.lock);
    } else {
      this.release(unclaimed.target, unclaimed.lock);
    }
  }

  /**
   * A handle was released or lost (called before `passOnRelease`). The first waiter waiting for it to be
   * passed on looks again: it takes the pass if one comes, else it contends in Redis.
   */
  holderEnded(handle: RedisLockHandle): void {
    const id = handle.target.id;
    if (this.holders.get(id) !== handle) return;
    this.holders.delete(id);
    this.firstWaiters.get(id)?.wake.ring();
  }
}

/** Whether a waiter still wants a lock whose lease ends then, and it is worth passing. */
function wants(waiter: PassWaiter, leaseEnds: number): boolean {
  const now = monotonicNow();
  return !waiter.signal?.aborted && now < waiter.deadline && leaseEnds - now >= MIN_PASSED_LEASE;
}

/** Registers a waiter in `registry` under `key`; the ticket learns of the lock it is passed. */
function register(
  registry: Map<string, RegisteredWaiter>,
  key: string,
  waiter: PassWaiter,
): PassTicket {
  let lock: PassedLock | undefined;
  let resolve!: (value: 'passed') => void;
  const passed = new Promise<'passed'>((r) => (resolve = r));
  const entry: RegisteredWaiter = {
    ...waiter,
    take: (given) => {
      lock = given;
      waiter.wake.ring();
      resolve('passed');
    },
  };
  registry.set(key, entry);
  return {
    get lock() {
      return lock;
    },
    passed,
    cancel: () => {
      if (registry.get(key) === entry) registry.delete(key);
    },
  };
}

/** The lock `handle` holds, as passed on: same token and lease, the next fencing token. */
function passed(handle: RedisLockHandle, leaseEnds: number): PassedLock {
  return {
    token: handle.token,
    fencingToken: handle.fencingToken + 1n,
    leaseEnds,
    leaseGiven: handle.leaseGiven,
    passesLeft: handle.passesLeft - 1,
    passedTo: handle.passedTo,
  };
}
