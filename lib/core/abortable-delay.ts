/**
 * Resolves after `ms` milliseconds, or as soon as `signal` aborts (resolving, not rejecting, so
 * the caller decides what an abort means). The timer is cleared either way.
 */
export function abortableDelay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Monotonic milliseconds: lease arithmetic must not jump with the wall clock. */
export const monotonicNow = (): number => performance.now();
