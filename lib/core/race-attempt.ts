import { attemptTimeoutMessage } from '../redis-lock.messages.js';

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

/** Redis did not answer in time (as opposed to answering with an error). */
export class NoAnswerError extends Error {}

/**
 * The reply, or a rejection once `ms` pass without one: a client that keeps retrying a command
 * (ioredis' default is 20 reconnect attempts) must not hold up a release, renewal or check.
 */
export async function answerWithin<T>(reply: Promise<T>, ms: number): Promise<T> {
  const outcome = await raceAttempt(reply, ms, undefined, undefined);
  if (outcome.kind !== 'reply') throw new NoAnswerError(attemptTimeoutMessage(ms));
  return outcome.value;
}
