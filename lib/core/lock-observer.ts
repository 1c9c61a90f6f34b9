// The core's observation hook: what happens to acquisitions and held locks, for telemetry.
import {
  InvalidLockKeyError,
  LockNotAcquiredError,
  LockUnavailableError,
} from '../errors/lock.errors.js';
import { monotonicNow } from './lease/monotonic-clock.js';
import type { RedisLockHandle } from './lease/redis-lock.handle.js';

/**
 * How an acquisition ended: `acquired`; `busy` (held by another owner until the wait ran out, or
 * at the single attempt); `aborted` (its signal); `unavailable` (Redis did not answer, or the
 * client was closed); `invalid` (keys that cannot be locked together); `error` (anything else).
 */
export type AcquireOutcome = 'acquired' | 'busy' | 'aborted' | 'unavailable' | 'invalid' | 'error';

/** How a hold ended: released by its owner (or passed on), or lost (its lease could not be kept). */
export type HoldOutcome = 'released' | 'lost';

/**
 * What an observer learns when an acquisition starts.
 *
 * @example
 * const started: AcquireStarted = { key: 'order:1', keys: ['order:1'], mode: 'default', waitTimeout: 0 };
 */
export interface AcquireStarted {
  /** The key, or the keys joined with `', '` (not the name in Redis: no prefix, no hash tag). */
  readonly key: string;
  readonly keys: readonly string[];
  /** `fair` when granted in arrival order across processes, `default` otherwise. */
  readonly mode: 'default' | 'fair';
  /** How long the caller may wait (ms, 0 for a single attempt). */
  readonly waitTimeout: number;
}

/**
 * Observes one held lock, from its grant to its release or loss.
 *
 * @example
 * const hold: HoldObservation = { renewed() {}, ended(outcome, heldMs) { log(outcome, heldMs); } };
 */
export interface HoldObservation {
  /** The lease was extended (by the watchdog or `extend()`). */
  renewed(): void;
  /**
   * The hold ended, once: released (`reason` undefined) or lost (`reason` says why, in words
   * without the token).
   */
  ended(outcome: HoldOutcome, heldMs: number, reason?: string): void;
}

/**
 * Observes one acquisition. Nothing of it may throw into the lock's path: an observer that throws
 * is the observer's bug, and the lock goes on regardless.
 *
 * @example
 * const acquisition: AcquireObservation = { ended: (outcome, waitedMs) => undefined };
 */
export interface AcquireObservation {
  /**
   * The acquisition ended after `waitedMs`. With `acquired`, `handle` is the lock; what this
   * returns observes its hold.
   */
  ended(
    outcome: AcquireOutcome,
    waitedMs: number,
    handle?: RedisLockHandle,
  ): HoldObservation | undefined;
}

/**
 * Told what locks do (`RedisLockClientOptions.observer`): the OpenTelemetry instrumentation of
 * the Nest layer is one. Returning `undefined` from `acquireStarted` observes nothing of that
 * acquisition, which is what an observer with nowhere to record should do: it then costs a call.
 *
 * @example
 * const outcomes = new Map<string, number>();
 * const observer: LockObserver = {
 *   acquireStarted: () => ({
 *     ended: (outcome) => void outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1),
 *   }),
 * };
 */
export interface LockObserver {
  acquireStarted(event: AcquireStarted): AcquireObservation | undefined;
}

/** The outcome a failed acquisition's error stands for. */
export function outcomeOf(err: unknown): AcquireOutcome {
  if (err instanceof LockNotAcquiredError) return err.aborted ? 'aborted' : 'busy';
  if (err instanceof LockUnavailableError) return 'unavailable';
  if (err instanceof InvalidLockKeyError) return 'invalid';
  return 'error';
}

/**
 * `acquiring` observed: ends the observation with its outcome and, when it brings a lock, starts
 * observing the hold on the handle. Settles as `acquiring` does, with the same value or error.
 *
 * @example
 * return observeAcquire(observation, () => acquisition.acquire(target, opts));
 */
export async function observeAcquire(
  observation: AcquireObservation,
  acquiring: () => Promise<RedisLockHandle>,
): Promise<RedisLockHandle> {
  const started = monotonicNow();
  let handle: RedisLockHandle;
  try {
    handle = await acquiring();
  } catch (err) {
    quietly(() => observation.ended(outcomeOf(err), monotonicNow() - started));
    throw err;
  }
  const hold = quietly(() => observation.ended('acquired', monotonicNow() - started, handle));
  if (hold) handle.observe(hold);
  return handle;
}

/** Runs an observer's callback; an error in it must not change what the lock does. */
export function quietly<T>(callback: () => T): T | undefined {
  try {
    return callback();
  } catch {
    return undefined;
  }
}

/**
 * One held lock as its observer sees it: renewals, then one end (released, or lost and why).
 *
 * @example
 * const hold = new ObservedHold(observation);
 * hold.renewed();
 * hold.end(); // released; hold.end('lease expired') for a loss
 */
export class ObservedHold {
  private readonly started = monotonicNow();
  private ended = false;

  constructor(private readonly hold: HoldObservation) {}

  renewed(): void {
    if (!this.ended) quietly(() => this.hold.renewed());
  }

  /** Tells the observer, once, that the hold ended: lost when there is a reason, else released. */
  end(lostBecause?: string): void {
    if (this.ended) return;
    this.ended = true;
    const outcome = lostBecause === undefined ? 'released' : 'lost';
    quietly(() => this.hold.ended(outcome, monotonicNow() - this.started, lostBecause));
  }
}
