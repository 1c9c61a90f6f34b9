/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many milliseconds. Default 5000. */
  timeout?: number;
  /** Milliseconds between two checks. Default 20. */
  interval?: number;
  /** What was awaited, for the error; a function is called only when the wait fails. */
  message?: string | (() => string);
}

/**
 * Polls `condition` until it returns `true`, or fails once `timeout` has passed.
 *
 * Tests wait on a condition with a deadline instead of sleeping a fixed time: fast when the
 * machine is fast, and a clear failure when it never happens. A condition that throws counts
 * as `false`; the last error is reported if the wait fails.
 *
 * @example
 * await waitFor(async () => (await redis.exists('lock:{a}')) === 0, {
 *   timeout: 2000,
 *   message: 'lock:a to be released',
 * });
 *
 * @throws Error when the condition is still not `true` after `timeout` ms.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: WaitForOptions = {},
): Promise<void> {
  const { timeout = 5000, interval = 20, message = 'condition' } = options;
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      if (await condition()) return;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())));
  }
  const what = typeof message === 'function' ? message() : message;
  const cause = lastError === undefined ? '' : ` (last error: ${errorText(lastError)})`;
  throw new Error(`waitFor: timed out after ${timeout} ms waiting for ${what}${cause}`);
}

/**
 * Resolves after `ms` milliseconds. Only for pacing inside harness loops and workers: a test
 * that needs something to have happened waits for it with {@link waitFor}.
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
