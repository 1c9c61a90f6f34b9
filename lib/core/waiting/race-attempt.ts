/* Bounded waits for Redis: a reply raced against no answer, the deadline and an abort. */
import { attemptTimeoutMessage } from '../../redis-lock.messages.js';
import { setLongTimeout } from '../lease/long-timeout.js';
import { monotonicNow } from '../lease/monotonic-clock.js';

/** How an in-flight Redis command ended, from the waiter's point of view. */
export type AttemptOutcome<T> =
  { kind: 'reply'; value: T } | { kind: 'timeout' } | { kind: 'deadline' } | { kind: 'aborted' };

/** Redis did not answer in time (as opposed to answering with an error). */
export class NoAnswerError extends Error {}

/** A command waiting for its answer, and what to do if none comes in time. */
interface Overdue {
  at: number;
  expire(): void;
}

/** How often the shared sweep looks for commands Redis has not answered in time (ms). */
const SWEEP_EVERY = 10;
const awaiting = new Set<Overdue>();
let sweeper: NodeJS.Timeout | undefined;

/*
 * "No answer" timeouts share one coarse timer instead of one timer per command: they are long
 * (up to 2 s), almost never fire, and a timer per command was a visible share of an uncontended
 * lock. Precision is SWEEP_EVERY ms, which is plenty for "Redis is not answering".
 */
function watch(entry: Overdue): void {
  awaiting.add(entry);
  // unref: waiting for an answer must not by itself keep the process alive.
  sweeper ??= setInterval(sweep, SWEEP_EVERY).unref();
}

function sweep(): void {
  if (awaiting.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
    return;
  }
  const now = monotonicNow();
  for (const entry of awaiting) {
    if (entry.at <= now) {
      awaiting.delete(entry);
      // Timers run before the event loop reads sockets: after a stall (GC, busy CPU), a reply
      // already waiting in the socket must win over its timeout, so expire after the I/O phase.
      setImmediate(entry.expire);
    }
  }
}

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
    let done = false;
    const settle = () => {
      done = true;
      awaiting.delete(overdue);
      deadlineTimer?.clear();
      signal?.removeEventListener('abort', onAbort);
    };
    const finish = (outcome: AttemptOutcome<T>) => {
      if (done) return;
      settle();
      resolve(outcome);
    };
    const onAbort = () => finish({ kind: 'aborted' });
    const overdue: Overdue = {
      at: monotonicNow() + answerWithin,
      expire: () => finish({ kind: 'timeout' }),
    };
    watch(overdue);
    // The deadline of a long wait (or Infinity) is past what a plain setTimeout keeps.
    const deadlineTimer =
      deadlineIn === undefined
        ? undefined
        : setLongTimeout(() => finish({ kind: 'deadline' }), deadlineIn);
    signal?.addEventListener('abort', onAbort, { once: true });
    reply.then(
      (value) => finish({ kind: 'reply', value }),
      (err: unknown) => {
        if (done) return;
        settle();
        reject(err);
      },
    );
  });
}

/**
 * The reply, or a rejection once `ms` pass without one: a client that keeps retrying a command
 * (ioredis' default is 20 reconnect attempts) must not hold up a release, renewal or check.
 */
export function answerWithin<T>(reply: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let done = false;
    const overdue: Overdue = {
      at: monotonicNow() + ms,
      expire: () => {
        if (done) return;
        done = true;
        reject(new NoAnswerError(attemptTimeoutMessage(ms)));
      },
    };
    watch(overdue);
    reply.then(
      (value) => {
        if (done) return;
        done = true;
        awaiting.delete(overdue);
        resolve(value);
      },
      (err: unknown) => {
        if (done) return;
        done = true;
        awaiting.delete(overdue);
        reject(err);
      },
    );
  });
}
