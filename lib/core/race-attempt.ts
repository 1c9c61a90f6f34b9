/** How an in-flight Redis command ended, from the waiter's point of view. */
export type AttemptOutcome<T> =
  { kind: 'reply'; value: T } | { kind: 'timeout' } | { kind: 'deadline' } | { kind: 'aborted' };

/**
 * Races a Redis reply against: no answer within `answerWithin` ms (Redis unavailable), the wait's
 * deadline (`deadlineIn` ms, if any) and the caller's abort signal. A rejected reply rejects.
 * Timers and listeners are removed whatever wins; the caller owns cleanup of a late reply.
 */
export function raceAttempt<T>(
  reply: Promise<T>,
  answerWithin: number,
  deadlineIn: number | undefined,
  signal: AbortSignal | undefined,
): Promise<AttemptOutcome<T>> {
  return new Promise((resolve, reject) => {
    const finish = (outcome: AttemptOutcome<T>) => {
      clearTimeout(answerTimer);
      clearTimeout(deadlineTimer);
      signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const onAbort = () => finish({ kind: 'aborted' });
    const answerTimer = setTimeout(() => finish({ kind: 'timeout' }), answerWithin);
    const deadlineTimer =
      deadlineIn === undefined
        ? undefined
        : setTimeout(() => finish({ kind: 'deadline' }), Math.max(0, deadlineIn));
    signal?.addEventListener('abort', onAbort, { once: true });
    reply.then(
      (value) => finish({ kind: 'reply', value }),
      (err: unknown) => {
        clearTimeout(answerTimer);
        clearTimeout(deadlineTimer);
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
