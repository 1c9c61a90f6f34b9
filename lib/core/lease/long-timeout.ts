/* Timers longer than Node's 2^31-1 ms limit, and the check that a delay fits in one. */
import { MAX_TIMER_DELAY } from '../../redis-lock.constants.js';

/** A timer from `setLongTimeout`. */
export interface LongTimeout {
  /** Cancels the timer, whichever of its steps is running. */
  clear(): void;
}

/**
 * `setTimeout` for any delay, `Infinity` included (never fires). Node runs a timer longer than
 * 2^31 - 1 ms after 1 ms (with a TimeoutOverflowWarning), so a user's `waitTimeout` of
 * `Number.MAX_SAFE_INTEGER` would give up at once: a longer delay is waited out in steps of at
 * most that. Every timer whose delay comes from user input goes through here. Like `setTimeout`,
 * it fires no earlier than `ms`, and a negative delay counts as 0.
 *
 * @example
 * const timer = setLongTimeout(() => giveUp(), waitTimeout);
 * // ...on success:
 * timer.clear();
 */
export function setLongTimeout(callback: () => void, ms: number): LongTimeout {
  let timer: NodeJS.Timeout;
  const arm = (left: number) => {
    timer =
      left > MAX_TIMER_DELAY
        ? setTimeout(() => arm(left - MAX_TIMER_DELAY), MAX_TIMER_DELAY)
        : setTimeout(callback, Math.max(0, left));
  };
  arm(ms);
  return { clear: () => clearTimeout(timer) };
}

/**
 * Whether `ms` is a delay the lease's and the watchdog's timers can keep: a positive integer no
 * longer than Node's longest timer (a longer one fires after 1 ms, so renewals would spin).
 *
 * @example
 * isTimerDelay(30_000); // true
 * isTimerDelay(2 ** 31); // false
 */
export function isTimerDelay(ms: unknown): ms is number {
  return Number.isInteger(ms) && (ms as number) > 0 && (ms as number) <= MAX_TIMER_DELAY;
}
