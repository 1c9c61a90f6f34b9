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

/** A waiter as a release sees it: `take` hands it the lock. */
type Candidate = PassCandidate & { take(lock: PassedLock): void };

/** A lock released while a waiter of this process waited for it, until someone takes it. */
interface Vacancy {
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
 * place the releasing lock came through (`inLine`). It is passed at once, nobody may go first.
 *
 * The numbers after a grant's fencing token are left free for these passes (`FENCE_STRIDE`).
 *
 * @example
 * const passes = new LocalPasses((target, lock) => store.release(target, lock.token, lock.passedTo));
 * const candidacy = passes.candidate(target.id, { deadline, signal, wake });
 * try { ...wait... if (candidacy.lock) return takeOver(candidacy.lock); } finally { candidacy.withdraw(); }
 */
export class LocalPasses {
  /** The first waiter of each local queue, by key set: the one a release passes to. */
  private readonly candidates = new Map<string, Candidate>();
  /**
   * Fair waiters of this process, by key set and the queue place (token) just ahead of theirs:
   * a lock on other keys coming through that place is not theirs to take.
   */
  private readonly behind = new Map<string, Candidate>();
  /** Default-mode locks this process holds, by key set: its waiters wait for them to be let go. */
  private readonly holders = new Map<string, RedisLockHandle>();
  /** Locks released to this process's callers, until the end of the event loop's turn. */
  private readonly vacancies = new Map<string, Vacancy>();
  private closed = false;

  /** @param release Releases a lock in Redis that nobody here took after all. */
  constructor(private readonly release: (target: LockTarget, lock: PassedLock) => void) {}

  /** Passes nothing from now on: every release goes to Redis, and so do the vacant locks. */
  close(): void {
    this.closed = true;
    for (const { lock, target } of this.vacancies.values()) this.release(target, lock);
    this.vacancies.clear();
  }

  /** Records a granted default-mode lock: the first waiter waits for it to be let go. */
  granted(handle: RedisLockHandle): void {
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
  passWithin(id: string): number | undefined {
    if (this.closed) return undefined;
    const vacancy = this.vacancies.get(id);
    if (vacancy) return vacancy.lock.leaseEnds - monotonicNow();
    const holder = this.holders.get(id);
    return holder?.isHeld() ? holder.leaseLeft() : undefined;
  }

  /** A lock on these keys released in this turn of the event loop, for a caller now asking. */
  claim(id: string): PassedLock | undefined {
    const vacancy = this.vacancies.get(id);
    if (!vacancy || this.closed) return undefined;
    this.vacancies.delete(id);
    return vacancy.lock;
  }

  /** Makes a waiter the one a release of these keys passes to. */
  candidate(id: string, waiter: PassCandidate): Candidacy {
    return enrol(this.candidates, id, waiter);
  }

  /**
   * Fair mode: makes a waiter the one a release passes to when the lock came through the queue
   * place `ahead` (the waiter just ahead of it, or the holder when it is first in the queue),
   * since its turn is next then.
   */
  inLine(id: string, ahead: string, waiter: PassCandidate): Candidacy {
    return enrol(this.behind, `${id}\n${ahead}`, waiter);
  }

  /**
   * Offered a lock being released, whose lease in Redis ends at `leaseEnds`: passes it to the
   * keys' candidate if there is one that still wants it, and enough lease is left to be worth it.
   * @returns true when passed (nothing is to be released in Redis).
   */
  offer(handle: RedisLockHandle, leaseEnds: number): boolean {
    if (this.closed || handle.passesLeft <= 0) return false;
    if (handle.queueToken !== undefined)
      return this.passInOrder(handle, handle.queueToken, leaseEnds);
    const id = handle.target.id;
    const next = this.candidates.get(id);
    if (!next || !wants(next, leaseEnds)) return false;
    const vacancy: Vacancy = { target: handle.target, lock: passed(handle, leaseEnds) };
    // Callers asking before the next turn of the event loop take it first (see the class).
    this.vacancies.set(id, vacancy);
    setImmediate(() => this.fill(id, vacancy));
    return true;
  }

  /** Fair mode: to the waiter right behind the place this lock came through, if it is ours. */
  private passInOrder(handle: RedisLockHandle, place: string, leaseEnds: number): boolean {
    const key = `${handle.target.id}\n${place}`;
    const next = this.behind.get(key);
    if (!next || !wants(next, leaseEnds)) return false;
    this.behind.delete(key);
    next.take(passed(handle, leaseEnds));
    return true;
  }

  /** Gives a vacant lock nobody claimed to the first waiter, or back to Redis if it left. */
  private fill(id: string, vacancy: Vacancy): void {
    if (this.vacancies.get(id) !== vacancy) return;
    this.vacancies.delete(id);
    const next = this.candidates.get(id);
    if (next && wants(next, vacancy.lock.leaseEnds)) {
      // One pass per candidate: it stops being one as it takes the lock.
      this.candidates.delete(id);
      next.take(vacancy.lock);
    } else {
      this.release(vacancy.target, vacancy.lock);
    }
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

/** Whether a waiter still wants a lock whose lease ends then, and it is worth passing. */
function wants(waiter: PassCandidate, leaseEnds: number): boolean {
  const now = monotonicNow();
  return !waiter.signal?.aborted && now < waiter.deadline && leaseEnds - now >= MIN_PASSED_LEASE;
}

/** Enrols a waiter in `registry` under `key`; the candidacy learns of the lock it is passed. */
function enrol(registry: Map<string, Candidate>, key: string, waiter: PassCandidate): Candidacy {
  let lock: PassedLock | undefined;
  let resolve!: (value: 'passed') => void;
  const passed = new Promise<'passed'>((r) => (resolve = r));
  const entry: Candidate = {
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
    withdraw: () => {
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
