/* Graceful shutdown's first step: waiting, with a bound, for the locks a client holds to be let go. */
import { MAX_DRAIN_TIMEOUT } from '../../redis-lock.constants.js';
import { invalidOptionMessage } from '../../redis-lock.messages.js';
import { monotonicNow } from './monotonic-clock.js';
import type { RedisLockHandle } from './redis-lock.handle.js';

/**
 * The drain timeout, checked.
 * @throws RangeError unless it is an integer of milliseconds from 0 to 2^31-1.
 * @example
 * const timeout = checkDrainTimeout(options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT);
 */
export function checkDrainTimeout(timeout: unknown): number {
  if (
    !Number.isInteger(timeout) ||
    (timeout as number) < 0 ||
    (timeout as number) > MAX_DRAIN_TIMEOUT
  ) {
    throw new RangeError(
      invalidOptionMessage(
        'drainTimeout',
        timeout,
        `an integer of milliseconds from 0 to ${MAX_DRAIN_TIMEOUT}`,
      ),
    );
  }
  return timeout as number;
}

/**
 * Resolves once none of `held()` is held any more (released, lost, or its fixed lease ran out),
 * or once `timeout` ms have passed, with the handles still held then. The handles' watchdogs keep
 * renewing meanwhile: the work under them stays exclusive while it finishes.
 *
 * @param onEnded registers a callback for whenever a handle is let go; returns its removal.
 * @example
 * const left = await heldAfterDrain(() => this.held, 10_000, (wake) => this.onEnded(wake));
 */
export async function heldAfterDrain(
  held: () => Iterable<RedisLockHandle>,
  timeout: number,
  onEnded: (wake: () => void) => () => void,
): Promise<RedisLockHandle[]> {
  const deadline = monotonicNow() + timeout;
  for (;;) {
    const live = [...held()].filter((handle) => handle.isHeld());
    const left = deadline - monotonicNow();
    if (live.length === 0 || left <= 0) return live;
    // A lock without a watchdog is let go by its lease running out, which nothing announces.
    const nextLapse = Math.min(...live.map((handle) => handle.leaseLeft()));
    await new Promise<void>((resolve) => {
      // Not unref'd: a shutdown in progress keeps the process alive until it is done.
      const timer = setTimeout(wake, Math.max(1, Math.min(left, nextLapse)));
      const stop = onEnded(wake);
      function wake() {
        clearTimeout(timer);
        stop();
        resolve();
      }
    });
  }
}
